package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/internal/schema"
)

func runDescribe(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "describe")
	addr := fs.String("addr", "", "the server's host:port")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	asJSON := fs.Bool("json", false, "print the description as JSON, with each shape's structure and fingerprint")
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case *addr == "":
		return usagef("-addr is required")
	case len(pos) > 1:
		return usagef("too many arguments: %q", pos)
	}
	service := ""
	if len(pos) == 1 {
		service = pos[0]
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cli, err := dial(*addr, *timeout)
	if err != nil {
		return err
	}
	defer cli.Close()
	desc, err := describe(ctx, cli, *addr, service)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(desc)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tARGS\tREPLY")
	for _, s := range desc.Services {
		for _, m := range s.Methods {
			fmt.Fprintf(tw, "%s.%s\t%s\t%s\n", s.Name, m.Name, m.Args, m.Reply)
		}
	}
	return tw.Flush()
}

// errNoIntrospection is returned by describe when the server does not
// describe itself.
var errNoIntrospection = errors.New("the server does not describe itself (it runs with rpc.WithIntrospection(false))")

// describe asks the server at addr for the description of service, or of
// every service when service is "".
func describe(ctx context.Context, cli *rpc.Client, addr, service string) (*schema.Description, error) {
	var desc schema.Description
	err := cli.CallContext(ctx, schema.DescribeMethod, schema.DescribeArgs{Service: service}, &desc)
	if errors.Is(err, rpc.ErrNoService) {
		return nil, fmt.Errorf("%s: %w", addr, errNoIntrospection)
	}
	if err != nil {
		return nil, err
	}
	return &desc, nil
}

// dial connects to one server; timeout bounds the dial.
func dial(addr string, timeout time.Duration) (*rpc.Client, error) {
	cli, err := rpc.Dial("tcp", addr, rpc.WithKeepalive(min(timeout, 5*time.Second)), rpc.WithPoolSize(1))
	if err != nil {
		return nil, err
	}
	return cli, nil
}
