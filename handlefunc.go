package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	"github.com/seedrpc/rpc/internal/wire"
)

// HandleFunc serves fn as the method serviceMethod ("Service.Method") of
// srv, with no receiver type: the args decode into a Req, and the Resp fn
// returns is the reply (fn's error, when not nil, is the call's error, as
// for a method's). fn runs on the same dispatch as registered methods:
// server interceptors, call limits, per-method statistics, the handler's
// ctx and introspection (the shapes of Req and Resp) all apply.
//
// HandleFunc adds the method to the service, creating the service if it
// does not exist; a service registered with Register gains the method too.
// It returns an error, and changes nothing, when the name is not
// "Service.Method" with both parts non-empty and one dot, when the service
// is the reserved "_seedrpc", when the service already has a method of
// that name, or when fn is nil. It may be called while the server serves;
// the method is callable once it returns. A new service created after
// Serve began on a server with a registry (WithRegistry) would not be
// announced, since Serve announces the services it has when it starts, so
// that is an error: create services before Serve (adding methods to a
// service announced already is fine).
func HandleFunc[Req, Resp any](srv *Server, serviceMethod string, fn func(ctx context.Context, req Req) (Resp, error)) error {
	if srv == nil {
		return errors.New("rpc: HandleFunc on a nil Server")
	}
	if fn == nil {
		return fmt.Errorf("rpc: HandleFunc(%q) with a nil function", serviceMethod)
	}
	svcName, name, err := splitServiceMethod(serviceMethod)
	if err != nil {
		return err
	}
	return srv.addMethod(svcName, name, funcMethod(serviceMethod, fn))
}

// splitServiceMethod checks a name given to HandleFunc and splits it.
func splitServiceMethod(serviceMethod string) (svc, method string, err error) {
	svc, method, ok := strings.Cut(serviceMethod, ".")
	switch {
	case !ok || svc == "" || method == "" || strings.Contains(method, "."):
		return "", "", fmt.Errorf("rpc: HandleFunc: malformed method name %q, want \"Service.Method\"", serviceMethod)
	case len(serviceMethod) > wire.MaxMethodLen:
		return "", "", fmt.Errorf("rpc: HandleFunc: method name of %d bytes exceeds %d", len(serviceMethod), wire.MaxMethodLen)
	case isReserved(svc):
		return "", "", fmt.Errorf("rpc: HandleFunc(%q): service name %q is reserved", serviceMethod, svc)
	}
	return svc, method, nil
}

// funcMethod builds the method table entry of fn. The args and reply live
// in one allocation (newValues) as for a registered method; Req may be a
// pointer, which then points into it.
func funcMethod[Req, Resp any](fullName string, fn func(context.Context, Req) (Resp, error)) *methodType {
	argType, replyType := reflect.TypeFor[Req](), reflect.TypeFor[Resp]()
	argIsPtr := argType.Kind() == reflect.Pointer
	argElem := argType
	if argIsPtr {
		argElem = argType.Elem()
	}
	m := &methodType{
		fullName:  fullName,
		withCtx:   true,
		argType:   argType,
		argIsPtr:  argIsPtr,
		replyType: replyType,
		pair:      pairType(argElem, replyType),
		stats:     new(methodStats),
	}
	m.handler = func(ctx context.Context, argp, replyp reflect.Value) error {
		// Interface of a pointer value does not allocate.
		var req Req
		if argIsPtr {
			req = argp.Interface().(Req)
		} else {
			req = *argp.Interface().(*Req)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return err
		}
		*replyp.Interface().(*Resp) = resp
		return nil
	}
	return m
}

// addMethod adds m as method name of service svcName, creating the
// service if needed (see HandleFunc).
func (s *Server) addMethod(svcName, name string, m *methodType) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.services.Load()
	svc := old[svcName]
	var next *service
	if svc == nil {
		if s.opts.registry != nil && len(s.listeners) > 0 {
			return fmt.Errorf("rpc: HandleFunc(%q): new service %s would not be announced in the registry, which Serve did already: create services before Serve", m.fullName, svcName)
		}
		next = &service{name: svcName, methods: map[string]*methodType{name: m}}
	} else {
		if _, dup := svc.methods[name]; dup {
			return fmt.Errorf("rpc: HandleFunc(%q): service %s already has a method %s", m.fullName, svcName, name)
		}
		// A new service value: calls in flight read the old one unlocked.
		next = &service{name: svc.name, methods: maps.Clone(svc.methods), rejected: maps.Clone(svc.rejected)}
		next.methods[name] = m
		delete(next.rejected, name)
	}
	services := maps.Clone(old)
	services[svcName] = next
	s.services.Store(&services)
	return nil
}
