// Command seedrpc looks at and calls seedrpc services from the shell.
//
//	seedrpc list     -redis ADDR [SERVICE]
//	seedrpc watch    -redis ADDR SERVICE
//	seedrpc describe -addr HOST:PORT [SERVICE]
//	seedrpc call     (-addr HOST:PORT | -redis ADDR) [-H k=v]... [-timeout D] Service.Method JSON
//
// list shows the services in a Redis registry with their instance counts,
// or one service's instances (address, weight, metadata, time until the
// entry expires); watch prints a line per instance change as it happens,
// until interrupted. describe asks a server for its services, methods and
// the shapes of their args and replies (the server's reserved "_seedrpc"
// service). call sends JSON args, converted to what the method expects
// by its described shape (integers, floats, base64 bytes, RFC 3339 times,
// nested structs and maps), and prints the reply as JSON:
//
//	$ seedrpc call -addr 127.0.0.1:9000 Calc.Add '{"A":2,"B":3}'
//	5
//
// JSON args are read from stdin when given as "-"; flags may come before
// or after the arguments, and "--" ends them (for JSON such as -5). Exit
// status: 0 on
// success, 1 when the call or the lookup failed (the error is on stderr),
// 2 for a usage error or args that do not fit the method.
//
// ADDR for -redis is host:port, several host:port separated by commas
// (Redis Cluster), or a redis:// or rediss:// URL (password, database,
// TLS). -prefix sets the registry's key prefix (default "seedrpc").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the remote side or the network said no
	exitUsage = 2 // the command line is wrong
)

func main() {
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand's synopsis.
type command struct {
	name, args, help string
}

var commands = []command{
	{"list", "-redis ADDR [SERVICE]", "services with instance counts, or one service's instances"},
	{"watch", "-redis ADDR SERVICE", "print instance changes as they happen, until interrupted"},
	{"describe", "-addr HOST:PORT [SERVICE]", "services, methods and the shapes of their args and replies"},
	{"call", "(-addr HOST:PORT | -redis ADDR) [-H k=v]... [-timeout D] Service.Method JSON|-", "call a method with JSON args and print the reply as JSON"},
}

// runner returns the function that runs command name.
func runner(name string) func(ctx context.Context, e env, args []string) error {
	switch name {
	case "list":
		return runList
	case "watch":
		return runWatch
	case "describe":
		return runDescribe
	case "call":
		return runCall
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: seedrpc <command> [flags] [args]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  seedrpc %s %s\n        %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'seedrpc <command> -h' for a command's flags.")
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := runner(c.name)(ctx, e, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "seedrpc %s: %v\n", c.name, err)
			if ue.showUsage {
				fmt.Fprintf(stderr, "usage: seedrpc %s %s\n", c.name, c.args)
			}
			return exitUsage
		case errors.Is(err, errInput):
			fmt.Fprintf(stderr, "seedrpc %s: %v\n", c.name, err)
			return exitUsage
		}
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(stderr, "seedrpc %s: %v (timed out: -timeout sets how long to wait)\n", c.name, err)
			return exitFail
		}
		fmt.Fprintf(stderr, "seedrpc %s: %v\n", c.name, err)
		return exitFail
	}
	fmt.Fprintf(stderr, "seedrpc: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// usageError is a command line that cannot be run.
type usageError struct {
	msg       string
	showUsage bool
}

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...), showUsage: true}
}

// parseFlags parses flags anywhere among args (flag stops at the first
// positional argument; this goes on after it) and returns the positional
// arguments. "--" ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{msg: err.Error()} // flag printed the usage already
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("seedrpc "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	for _, c := range commands {
		if c.name == name {
			fs.Usage = func() {
				fmt.Fprintf(e.stderr, "usage: seedrpc %s %s\n\n%s.\n\nflags:\n", c.name, c.args, c.help)
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// headerFlag collects repeated -H key=value flags.
type headerFlag [][2]string

func (h *headerFlag) String() string {
	parts := make([]string, len(*h))
	for i, kv := range *h {
		parts[i] = kv[0] + "=" + kv[1]
	}
	return strings.Join(parts, ",")
}

func (h *headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*h = append(*h, [2]string{k, v})
	return nil
}
