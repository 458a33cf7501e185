package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/schema"
)

// ErrSchemaMismatch is returned by a call whose args or reply type is
// incompatible with what the server's method declares (see the README,
// "Typed calls", for the rule): by typed calls (Method), and by untyped
// ones given WithSchemaCheck(true). The error names the first differing
// field, as in "args at $.Items[].Name: string vs int (client vs server)".
// The call is not sent.
var ErrSchemaMismatch = errors.New("rpc: schema mismatch")

// WithSchemaCheck turns the schema check on or off. Before a call's first
// request to a server address, the client asks the server to describe the
// service (introspection, the reserved "_seedrpc.Describe") and compares
// the shapes of the call's args and reply types with those of the
// server's method; an incompatible call fails with ErrSchemaMismatch. The
// verdict is kept per address, method and types until a connection to
// that address is lost, so later calls pay one map lookup. A server that
// does not answer the description (introspection off, the describe
// refused) is not checked. The describe is an ordinary call, through the
// client's interceptors (credentials they add apply; metrics they keep
// count it) and bounded by the checked call's deadline. Default: on for
// typed calls (Method), off for Call, Go, Callback and Oneway, which take
// the types of the args and reply values given.
func WithSchemaCheck(on bool) CallOption {
	return callOption(func(o *callOptions) {
		if on {
			o.schemaCheck = 1
		} else {
			o.schemaCheck = -1
		}
	})
}

// schemaKey names a verdict of one address: a method and the types of a
// call's Args and Reply (nil: anything).
type schemaKey struct {
	method      string
	args, reply reflect.Type
}

func (st *callState) schemaKey() schemaKey {
	call := st.call
	return schemaKey{call.ServiceMethod, reflect.TypeOf(call.Args), reflect.TypeOf(call.Reply)}
}

// schemaCache holds the schema checks of one address: the verdicts, read
// on every checked call without a lock, and the services' descriptions
// they are made from. The zero value is ready.
type schemaCache struct {
	// verdicts maps checked calls to nil (compatible, or not checkable)
	// or their mismatch; copy-on-write.
	verdicts atomic.Pointer[map[schemaKey]error]

	mu sync.Mutex // guards the fields below
	// gen counts resets: what a describe begun before one learnt is dropped.
	gen uint64
	// flights holds the description of each service, asked or being asked.
	flights map[string]*describeFlight
}

// describeFlight is one description of a service, shared by the calls
// that wait for it.
type describeFlight struct {
	done chan struct{} // closed when svc and err are set
	svc  *schema.Service
	err  error // a failure to learn anything; the flight is then dropped
}

// lookup returns the verdict of key, if known.
func (sc *schemaCache) lookup(key schemaKey) (known bool, err error) {
	m := sc.verdicts.Load()
	if m == nil {
		return false, nil
	}
	err, known = (*m)[key]
	return known, err
}

// reset forgets everything: the connection was lost, and the server
// answering next may be another build.
func (sc *schemaCache) reset() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen++
	sc.flights = nil
	sc.verdicts.Store(nil)
}

// flight returns the description flight of service and whether the caller
// is to fly it, with the generation it belongs to.
func (sc *schemaCache) flight(service string) (f *describeFlight, gen uint64, leader bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f := sc.flights[service]; f != nil {
		return f, sc.gen, false
	}
	if sc.flights == nil {
		sc.flights = make(map[string]*describeFlight)
	}
	f = &describeFlight{done: make(chan struct{})}
	sc.flights[service] = f
	return f, sc.gen, true
}

// land ends a flight: a failed one (or one overtaken by a reset) is
// dropped so the next call asks again.
func (sc *schemaCache) land(service string, f *describeFlight, gen uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if (f.err != nil || gen != sc.gen) && sc.flights[service] == f {
		delete(sc.flights, service)
	}
	close(f.done)
}

// store keeps the verdict of key, unless a reset came since gen.
func (sc *schemaCache) store(key schemaKey, verdict error, gen uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if gen != sc.gen {
		return
	}
	var m map[schemaKey]error
	if old := sc.verdicts.Load(); old != nil {
		m = maps.Clone(*old)
	} else {
		m = make(map[schemaKey]error, 1)
	}
	m[key] = verdict
	sc.verdicts.Store(&m)
}

// checkSchema returns the verdict of the call's schema check at p's
// address, asking the server first if it is not known. It runs on a
// goroutine of the client; ctx bounds it. A mismatch is notRetryable; a
// failure to ask (a lost connection, a timeout) is returned as the
// attempt's failure.
func (c *Client) checkSchema(ctx context.Context, st *callState, p *connPool) error {
	if !st.checkSchema {
		return nil
	}
	key := st.schemaKey()
	for try := 0; ; try++ {
		if known, err := p.schema.lookup(key); known {
			return err
		}
		f, gen, leader := p.schema.flight(st.service)
		if leader {
			f.svc, f.err = c.describeAt(ctx, p.addr, st.service)
			p.schema.land(st.service, f, gen)
		} else {
			select {
			case <-f.done:
			case <-ctx.Done():
				return callError(key.method, p.addr, fmt.Errorf("schema check: %w", ctx.Err()))
			}
		}
		if f.err != nil {
			if errors.Is(f.err, ErrOverloaded) {
				// The server is alive but refused the describe as
				// overloaded: send the call unchecked (it is refused at once
				// too if the server still has no room) and ask again next
				// time; nothing is cached.
				return nil
			}
			if !leader && try < 2 && ctx.Err() == nil {
				continue // the other caller's describe failed on its terms; ask ourselves
			}
			err := f.err
			var ce *callErr
			if errors.As(err, &ce) {
				err = ce.err
			}
			return callError(key.method, p.addr, fmt.Errorf("schema check: describing %s: %w", st.service, err))
		}
		verdict := compareSchema(key, p.addr, f.svc)
		p.schema.store(key, verdict, gen)
		return verdict
	}
}

// describeAt asks the server at addr to describe service. It returns nil
// and no error when the server answered without a description (it has
// introspection off, does not know the service, or refused): there is
// nothing to check against.
func (c *Client) describeAt(ctx context.Context, addr, service string) (*schema.Service, error) {
	var desc schema.Description
	call := c.newCall(schema.DescribeMethod, schema.DescribeArgs{Service: service}, &desc, nil, nil)
	st := &call.st
	st.pin = addr
	st.checkSchema = false
	st.opts.respHeader, st.opts.hedge = nil, 0
	// A server that takes the connection but never answers must not hold
	// the call forever: bound the wait as the keepalive bounds silence.
	ctx, cancel := context.WithTimeout(ctx, max(2*c.opts.keepalive, time.Second))
	defer cancel()
	err := c.callSync(ctx, call)
	if err != nil {
		if answered(err) {
			return nil, nil
		}
		return nil, err
	}
	for i := range desc.Services {
		if desc.Services[i].Name == service {
			return &desc.Services[i], nil
		}
	}
	return nil, nil
}

// answered reports whether err is the server's answer, as opposed to a
// failure to get one.
func answered(err error) bool {
	var se ServerError
	var ce *Error
	return errors.As(err, &se) || errors.As(err, &ce) ||
		errors.Is(err, ErrNoService) || errors.Is(err, ErrNoMethod) ||
		errors.Is(err, ErrBadRequest) || errors.Is(err, ErrInternal) ||
		errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrPermissionDenied)
}

// compareSchema is the verdict on key against the server's description of
// its service (nil: not checkable). A method the server does not have is
// not a mismatch: the call fails on its own with ErrNoMethod.
func compareSchema(key schemaKey, addr string, svc *schema.Service) error {
	if svc == nil {
		return nil
	}
	name := key.method[strings.LastIndexByte(key.method, '.')+1:]
	for _, m := range svc.Methods {
		if m.Name != name {
			continue
		}
		if mm := schema.Check(schema.Of(key.args), m.Args); mm.Path != "" {
			return mismatchError(key.method, addr, "args", mm)
		}
		if key.reply != nil {
			if mm := schema.Check(schema.Of(key.reply), m.Reply); mm.Path != "" {
				return mismatchError(key.method, addr, "reply", mm)
			}
		}
		return nil
	}
	return nil
}

func mismatchError(method, addr, what string, mm schema.Mismatch) error {
	return notRetryable{callError(method, addr, fmt.Errorf("%w: %s %s (client vs server)", ErrSchemaMismatch, what, mm.Explain()))}
}
