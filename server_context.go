package rpc

import (
	"context"
	"sync"
	"time"
)

// callContext is the ctx a handler receives. It is cheaper than
// context.WithCancel plus WithDeadline on every call: its Done channel and
// deadline timer are made only if the handler asks for Done.
type callContext struct {
	context.Context // the server's base context, for Value

	deadline    time.Time
	hasDeadline bool
	respSent    bool // SetHeader is too late; guarded by mu
	header      map[string]string

	mu sync.Mutex // guards done, err, timer, resp, and respSent above
	// done is made on the first Done call.
	done  chan struct{}
	err   error
	timer *time.Timer
	// resp holds the response headers set with SetHeader, made on the
	// first (a pointer, to keep every call's context small).
	resp *[]metaPair
}

type headerKey struct{}

// HeaderFromContext returns the metadata the caller sent with WithHeader, or
// nil. The map must not be modified.
func HeaderFromContext(ctx context.Context) map[string]string {
	h, _ := ctx.Value(headerKey{}).(map[string]string)
	return h
}

func (c *callContext) Deadline() (time.Time, bool) { return c.deadline, c.hasDeadline }

func (c *callContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		switch {
		case c.err != nil:
			close(c.done)
		case c.hasDeadline:
			d := time.Until(c.deadline)
			if d <= 0 {
				c.err = context.DeadlineExceeded
				close(c.done)
			} else {
				c.timer = time.AfterFunc(d, func() { c.cancel(context.DeadlineExceeded) })
			}
		}
	}
	return c.done
}

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && c.hasDeadline && !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
		if c.done != nil {
			close(c.done)
		}
	}
	return c.err
}

func (c *callContext) Value(key any) any {
	switch key.(type) {
	case headerKey:
		return c.header
	case respHeaderKey:
		return c
	}
	return c.Context.Value(key)
}

// cancel ends the context with err (context.Canceled when the caller gave up
// or the connection died) unless it has ended already.
func (c *callContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

// release stops the deadline timer once the handler has returned.
func (c *callContext) release() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
}
