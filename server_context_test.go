package rpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHandlerSeesDeadline(t *testing.T) {
	cli, _, _, _ := newProbePair(t, nil)
	var left time.Duration
	if err := cli.Call("Probe.Deadline", 0, &left, WithTimeout(time.Second)); err != nil {
		t.Fatalf("Call(Probe.Deadline) = %v", err)
	}
	if left <= 0 || left > time.Second {
		t.Errorf("handler deadline in %v, want within (0, 1s]", left)
	}
	err := cli.Call("Probe.Deadline", 0, &left)
	var se ServerError
	if !errors.As(err, &se) || string(se) != "no deadline" {
		t.Errorf("Call(Probe.Deadline) without timeout error = %v, want ServerError(no deadline)", err)
	}
}

func TestTimeoutCancelsHandler(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil)
	start := time.Now()
	var r int
	err := cli.Call("Calc.Sleep", 2*time.Second, &r, WithTimeout(50*time.Millisecond))
	if el := time.Since(start); el > time.Second {
		t.Fatalf("timed-out call took %v", el)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call error = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	waitFor(t, "the handler's ctx to be cancelled", func() bool { return calc.cancelled.Load() > 0 })
}

type HeaderEcho struct{}

func (HeaderEcho) Get(ctx context.Context, key string, reply *string) error {
	*reply = HeaderFromContext(ctx)[key]
	return nil
}

func TestHeaders(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&HeaderEcho{}); err != nil {
		t.Fatal(err)
	}
	cli, err := Dial("tcp", startServer(t, srv), WithHeader("tenant", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	tests := []struct {
		give string
		opts []CallOption
		want string
	}{
		{give: "tenant", want: "acme"},
		{give: "trace", opts: []CallOption{WithHeader("trace", "t-1")}, want: "t-1"},
		{give: "missing", want: ""},
	}
	for _, tt := range tests {
		var got string
		if err := cli.Call("HeaderEcho.Get", tt.give, &got, tt.opts...); err != nil || got != tt.want {
			t.Errorf("Call(HeaderEcho.Get, %q) = %q, %v; want %q, nil", tt.give, got, err, tt.want)
		}
	}
	var got string
	if err := cli.Call("HeaderEcho.Get", "x", &got, WithHeader(":timeout", "1")); err == nil {
		t.Errorf("Call with reserved header key = nil error, want an error")
	}
	// The connection survived the refused call.
	if err := cli.Call("HeaderEcho.Get", "tenant", &got); err != nil || got != "acme" {
		t.Errorf("Call after refused header = %q, %v", got, err)
	}
}
