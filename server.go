package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/registry"
)

// Server serves registered services to any number of connections.
type Server struct {
	opts serverOptions
	// helloReply is the pong that answers a client's hello: the features
	// the server understands and its limit of calls per connection.
	helloReply []byte
	// services is a copy-on-write map of name -> *service, read without a lock.
	services atomic.Pointer[map[string]*service]
	// running counts handlers running on the whole server.
	running atomic.Int64
	// shuttingDown is set by Shutdown and Close; new calls are refused.
	shuttingDown atomic.Bool
	// workers run handlers on goroutines whose stacks have already grown.
	workers workerPool
	// guard bounds how long a call runs on its connection's reading
	// goroutine (server_inline.go).
	guard inlineGuard
	// budget bounds the request bytes held in buffers (WithMaxBufferedBytes).
	budget *memBudget
	// limiter is the adaptive concurrency limit; nil when off.
	limiter *limiter
	// baseCtx is the parent of every handler's ctx; cancelled by Close.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	// chain runs the interceptors around a call; nil without interceptors.
	chain Handler

	mu sync.Mutex // guards the fields below and service registration
	// listeners being served.
	listeners map[net.Listener]struct{}
	// conns being served.
	conns map[*serverConn]struct{}
	// instances registered in opts.registry, for Deregister on Shutdown.
	instances []registry.Instance
	// draining is set once Shutdown began; closed once the server stopped
	// accepting; aborted by Close. Connections that arrive while draining
	// are served in draining mode so their calls are refused cleanly.
	draining, closed, aborted bool
	// reaping is set once the idle reaper runs (see server_limits.go).
	reaping bool
	// refused counts connections closed at accept (WithMaxConns) since the
	// burst began; refusedLog is when it was last logged.
	refused    int
	refusedLog time.Time
	// conns and Serve loops in progress.
	wg sync.WaitGroup
}

// NewServer returns a server with no services.
func NewServer(opts ...ServerOption) *Server {
	o := defaultServerOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.applyServer(&o)
		}
	}
	s := &Server{
		opts:      o,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
		budget:    newMemBudget(o.maxBuffered),
	}
	s.helloReply = wire.AppendHello(nil, wire.TypePong, 0, wire.HelloFeatures, o.connCalls)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.chain = chainServer(o.interceptors, callMethod)
	s.workers.init()
	if o.adaptive {
		s.limiter = newLimiter(adaptiveMin(), o.maxCalls, time.Now())
	}
	empty := map[string]*service{}
	s.services.Store(&empty)
	s.registerIntrospection()
	return s
}

// Register publishes the exported methods of rcvr that have a suitable form
// as the service named after rcvr's concrete type. It returns an error, and
// registers nothing, when rcvr has no suitable method (the error names every
// rejected method and why) or a service of that name exists.
func (s *Server) Register(rcvr any) error { return s.register("", rcvr, false) }

// RegisterName is like Register but names the service name.
func (s *Server) RegisterName(name string, rcvr any) error {
	if name == "" {
		return errors.New("rpc: RegisterName with an empty name")
	}
	if isReserved(name) {
		return fmt.Errorf("rpc: service name %q is reserved", name)
	}
	return s.register(name, rcvr, true)
}

func (s *Server) register(name string, rcvr any, useName bool) error {
	svc, err := newService(name, rcvr, useName)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.services.Load()
	if _, dup := old[svc.name]; dup {
		return fmt.Errorf("rpc: service %q already registered", svc.name)
	}
	m := maps.Clone(old)
	m[svc.name] = svc
	s.services.Store(&m)
	return nil
}

// lookup finds the method named "Service.Method".
func (s *Server) lookup(name []byte) (*methodType, error) {
	// The texts are net/rpc's, which its users match on; errors.Is matches
	// the sentinels.
	dot := bytes.LastIndexByte(name, '.')
	if dot < 0 {
		return nil, wrapMsg(ErrNoMethod, "rpc: service/method request ill-formed: "+string(name))
	}
	svc := (*s.services.Load())[string(name[:dot])]
	if svc == nil {
		return nil, wrapMsg(ErrNoService, "rpc: can't find service "+string(name))
	}
	m := svc.methods[string(name[dot+1:])]
	if m == nil {
		if why, ok := svc.rejected[string(name[dot+1:])]; ok {
			return nil, wrapMsg(ErrNoMethod, fmt.Sprintf("rpc: can't find method %s: not callable: %s", name, why))
		}
		return nil, wrapMsg(ErrNoMethod, "rpc: can't find method "+string(name))
	}
	return m, nil
}

// Serve accepts connections on lis and serves each on its own goroutine,
// in seedrpc's protocol or net/rpc's, whichever the client speaks.
// With WithRegistry it registers every service at the listener's address
// (or the one given with WithInstance) first. It returns ErrServerClosed after Shutdown or
// Close, or the first accept error.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lis.Close()
		return ErrServerClosed
	}
	s.listeners[lis] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, lis)
		s.mu.Unlock()
	}()

	if s.opts.tls != nil {
		lis = tls.NewListener(lis, s.opts.tls)
	}
	if s.opts.registry != nil {
		if err := s.announce(lis.Addr()); err != nil {
			lis.Close()
			return err
		}
	}
	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.opts.logger.Warn("rpc: accept error; retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.baseCtx.Done():
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("rpc: accept on %s: %w", lis.Addr(), err)
		}
		delay = 0
		if s.admit(nc) {
			s.serveConn(newServerConn(s, nc), true)
		}
	}
}

// ServeConn serves one connection until it ends, as in net/rpc: it returns
// once the client hangs up or Shutdown or Close closed the connection. The
// connection may speak seedrpc or net/rpc's protocol. A conn that is not a
// net.Conn has no deadlines: only closing it bounds its writes.
func (s *Server) ServeConn(conn io.ReadWriteCloser) {
	s.serveConn(newServerConn(s, asNetConn(conn)), false)
}

// serveConn serves c, on a new goroutine owned by the server when async,
// or else on the caller's; Shutdown and Close stop it.
func (s *Server) serveConn(c *serverConn, async bool) {
	s.mu.Lock()
	if s.aborted || (s.closed && !s.draining) {
		s.mu.Unlock()
		c.close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.startReaperLocked()
	s.mu.Unlock()
	run := func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
	if async {
		go run()
	} else {
		run()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// announce registers every service at addr in the registry.
func (s *Server) announce(addr net.Addr) error {
	adv := s.opts.instance.Addr
	if adv == "" {
		tcp, ok := addr.(*net.TCPAddr)
		if ok && tcp.IP.IsUnspecified() {
			return fmt.Errorf("rpc: listening on unspecified address %s: give the address to announce with WithInstance", addr)
		}
		adv = addr.String()
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.opts.registerTimeout)
	defer cancel()
	for name := range *s.services.Load() {
		if isReserved(name) {
			continue
		}
		inst := s.opts.instance
		inst.Service, inst.Addr = name, adv
		if err := s.opts.registry.Register(ctx, inst); err != nil {
			return fmt.Errorf("rpc: register %s at %s: %w", name, adv, err)
		}
		s.mu.Lock()
		s.instances = append(s.instances, inst)
		s.mu.Unlock()
	}
	return nil
}

// deregister removes the server's instances from the registry.
func (s *Server) deregister(ctx context.Context) error {
	s.mu.Lock()
	insts := s.instances
	s.instances = nil
	s.mu.Unlock()
	var errs []error
	for _, inst := range insts {
		if err := s.opts.registry.Deregister(ctx, inst); err != nil {
			errs = append(errs, fmt.Errorf("rpc: deregister %s at %s: %w", inst.Service, inst.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops the server gracefully: it deregisters from the registry,
// stops accepting, tells every connection it is draining so clients send
// no new calls, waits for running calls to finish, then closes the
// connections. If ctx ends first, Shutdown closes every connection, cancels
// the contexts of running handlers and returns ctx's error once they have
// returned (a handler that ignores its ctx delays it). Serve returns
// ErrServerClosed. Calling it again, or after Close, returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		return nil
	}
	s.draining = true
	s.mu.Unlock()

	// Deregister while still serving normally, so that clients learn from
	// the registry before any connection is refused.
	var errs []error
	if s.opts.registry != nil {
		if err := s.deregister(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.shuttingDown.Store(true)
	s.closeListeners()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			c.startDrain() // also for connections accepted meanwhile
			if c.drained() {
				c.close()
			}
		}
		left := len(s.conns)
		s.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			s.closeAll()
		}
		break
	}
	s.mu.Lock()
	s.draining = false // from now on ServeConn refuses
	s.mu.Unlock()
	s.cancelBase()
	s.wg.Wait()
	s.guard.wait()
	s.workers.stop()
	return errors.Join(errs...)
}

// Close stops the server at once: listeners and connections are closed and
// running handlers see their ctx cancelled. It waits for the server's
// goroutines, handlers included, to return. Serve returns ErrServerClosed.
// With a registry, Close also deregisters (best effort, within a second), so
// that the registry stops heartbeating for it.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed, s.aborted = true, true
	s.mu.Unlock()
	s.shuttingDown.Store(true)
	if !already {
		s.closeListeners()
	}
	s.closeAll()
	if s.opts.registry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.deregister(ctx) // best effort: the instances expire anyway
		cancel()
	}
	s.cancelBase()
	s.wg.Wait()
	s.guard.wait()
	s.workers.stop()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.Close()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
}
