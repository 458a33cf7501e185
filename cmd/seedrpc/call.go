package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/schema"
)

// maxStdin bounds the JSON read from stdin.
const maxStdin = 64 << 20

func runCall(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "call")
	addr := fs.String("addr", "", "call the server at host:port")
	rf := addRedisFlags(fs)
	var headers headerFlag
	fs.Var(&headers, "H", "send a request header key=value (repeatable)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long (the server's handler sees the deadline)")
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case (*addr == "") == (rf.addr == ""):
		return usagef("give one of -addr and -redis")
	case len(pos) != 2:
		return usagef("want Service.Method and JSON args (or - to read them from stdin), got %d arguments", len(pos))
	case *timeout <= 0:
		return usagef("-timeout must be positive")
	}
	method := pos[0]
	service, name, ok := strings.Cut(method, ".")
	if !ok || service == "" || name == "" || strings.Contains(name, ".") {
		return usagef("%q is not Service.Method", method)
	}
	input := []byte(pos[1])
	if pos[1] == "-" {
		if input, err = io.ReadAll(io.LimitReader(e.stdin, maxStdin)); err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
	jv, err := decodeJSON(input)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	target := *addr
	if target == "" {
		if target, err = pickInstance(ctx, rf, service); err != nil {
			return err
		}
	}
	cli, err := dial(target, *timeout)
	if err != nil {
		return err
	}
	defer cli.Close()
	opts := []rpc.CallOption{rpc.WithTimeout(*timeout)}
	for _, h := range headers {
		opts = append(opts, rpc.WithHeader(h[0], h[1]))
	}

	desc, err := describe(ctx, cli, target, service)
	if errors.Is(err, errNoIntrospection) {
		// Without shapes, let the server's JSON codec read the args.
		fmt.Fprintf(e.stderr, "seedrpc call: %s does not describe itself; sending the args with the JSON codec\n", target)
		return callJSON(ctx, e, target, *timeout, method, input, opts)
	}
	if err != nil {
		return err
	}
	m, err := findMethod(desc, service, name)
	if err != nil {
		return err
	}
	argv, err := fromJSON(jv, m.Args)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var reply msgpack.RawMessage
	if err := cli.CallContext(ctx, method, argv, &reply, opts...); err != nil {
		return err
	}
	out, err := toJSON(reply, m.Reply)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var buf bytes.Buffer
	writeJSON(&buf, out, "")
	buf.WriteByte('\n')
	_, err = e.stdout.Write(buf.Bytes())
	return err
}

// findMethod returns the description of service.name.
func findMethod(desc *schema.Description, service, name string) (*schema.Method, error) {
	for _, s := range desc.Services {
		if s.Name != service {
			continue
		}
		var names []string
		for i, m := range s.Methods {
			if m.Name == name {
				return &s.Methods[i], nil
			}
			names = append(names, m.Name)
		}
		return nil, fmt.Errorf("%w %q (%s has %s)", rpc.ErrNoMethod, service+"."+name, service, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("%w %q", rpc.ErrNoService, service)
}

// callJSON calls method on addr with the JSON codec, input as it is.
func callJSON(ctx context.Context, e env, addr string, timeout time.Duration, method string, input []byte, opts []rpc.CallOption) error {
	cli, err := rpc.Dial("tcp", addr, rpc.WithCodec(codec.JSON{}), rpc.WithKeepalive(min(timeout, 5*time.Second)), rpc.WithPoolSize(1))
	if err != nil {
		return err
	}
	defer cli.Close()
	var reply json.RawMessage
	if err := cli.CallContext(ctx, method, json.RawMessage(input), &reply, opts...); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, reply, "", "  "); err != nil {
		buf.Reset()
		buf.Write(reply)
	}
	buf.WriteByte('\n')
	_, err = e.stdout.Write(buf.Bytes())
	return err
}

// pickInstance looks service up in the registry and returns the address
// of a random live instance.
func pickInstance(ctx context.Context, rf *redisFlags, service string) (string, error) {
	rc, err := rf.open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	insts, err := rc.reg.Lookup(ctx, service)
	if err != nil {
		return "", err
	}
	if len(insts) == 0 {
		return "", fmt.Errorf("%w: %q in the registry at %s", rpc.ErrNoInstances, service, rf.addr)
	}
	return insts[rand.IntN(len(insts))].Addr, nil
}
