// Package calc is the service of seedrpc's examples: a plain Go type whose
// exported methods become remote procedures, with no IDL. Every reply names
// the server that computed it, so the examples can show where each call went.
//
// The demo (example/main.go), example/server and example/client share it:
//
//	srv := rpc.NewServer(rpc.WithRegistry(reg))
//	srv.Register(calc.New("s1", nil)) // service "Calc"; nil: no observer
//
//	var r calc.Reply
//	err := cli.Call("Calc.Add", calc.Args{A: 2, B: 3}, &r) // r.Value == 5, r.Server == "s1"
package calc

import (
	"context"
	"errors"
	"time"
)

// ErrDivideByZero is returned by Calc.Div when B is 0; a client receives
// its text as an rpc.ServerError.
var ErrDivideByZero = errors.New("calc: division by zero")

// Args are the operands of Add, Mul and Div.
type Args struct{ A, B int }

// Reply is the answer of every Calc method: the result and the name of the
// server that computed it.
type Reply struct {
	Value  int
	Server string
}

// SleepArgs asks Calc.Sleep to take D before answering.
type SleepArgs struct{ D time.Duration }

// Note is a fire-and-forget message for Calc.Note, sent with Oneway.
type Note struct{ Text string }

// Empty is the args or reply of a method that needs none.
type Empty struct{}

// Event tells an observer what a Calc received: a Note (Text is the note),
// the start of a Sleep (Text "started") and a Sleep whose caller gave up
// (Text is ctx's error).
type Event struct {
	Server string // the name given to New
	Method string // "Note" or "Sleep"
	Text   string
}

// Calc is the service. Create it with New; it is safe for concurrent use.
type Calc struct {
	name    string
	observe func(Event)
}

// New returns a Calc that signs its replies with name. observe, if not nil,
// is called with every Event, on the handler's goroutine; it must not block
// for long.
func New(name string, observe func(Event)) *Calc {
	return &Calc{name: name, observe: observe}
}

func (c *Calc) event(method, text string) {
	if c.observe != nil {
		c.observe(Event{Server: c.name, Method: method, Text: text})
	}
}

// Add sets reply.Value to A + B.
func (c *Calc) Add(args Args, reply *Reply) error {
	*reply = Reply{Value: args.A + args.B, Server: c.name}
	return nil
}

// Mul sets reply.Value to A * B.
func (c *Calc) Mul(args Args, reply *Reply) error {
	*reply = Reply{Value: args.A * args.B, Server: c.name}
	return nil
}

// Div sets reply.Value to A / B (integer division). It returns
// ErrDivideByZero when B is 0.
func (c *Calc) Div(args *Args, reply *Reply) error {
	if args.B == 0 {
		return ErrDivideByZero
	}
	*reply = Reply{Value: args.A / args.B, Server: c.name}
	return nil
}

// Whoami sets reply to the server's name.
func (c *Calc) Whoami(_ Empty, reply *string) error {
	*reply = c.name
	return nil
}

// Sleep answers after args.D (reply.Value is D in milliseconds), or returns ctx's error as soon as the caller
// gives up (its timeout passed or it cancelled): the handler's ctx carries
// the caller's deadline.
func (c *Calc) Sleep(ctx context.Context, args SleepArgs, reply *Reply) error {
	c.event("Sleep", "started")
	t := time.NewTimer(args.D)
	defer t.Stop()
	select {
	case <-t.C:
		*reply = Reply{Value: int(args.D / time.Millisecond), Server: c.name}
		return nil
	case <-ctx.Done():
		c.event("Sleep", ctx.Err().Error())
		return ctx.Err()
	}
}

// Note receives a message; it is meant for Oneway calls, which wait for no
// reply.
func (c *Calc) Note(n Note, _ *Empty) error {
	c.event("Note", n.Text)
	return nil
}
