package rpc

import (
	"fmt"
	"slices"

	"github.com/seedrpc/rpc/internal/schema"
)

// WithIntrospection turns the server's self-description on or off
// (default on). While on, any client can call the reserved service
// "_seedrpc" (method "Describe", see docs/PROTOCOL.md) to list the
// services, their methods and the shape of each method's args and reply;
// the seedrpc command's describe and call use it. Off, such calls fail as
// calls to an unknown service do.
func WithIntrospection(on bool) ServerOption {
	return serverOption(func(o *serverOptions) { o.noIntrospection = !on })
}

// introspection is the receiver of the reserved service.
type introspection struct{ srv *Server }

// registerIntrospection adds the reserved service unless it was turned off.
func (s *Server) registerIntrospection() {
	if s.opts.noIntrospection {
		return
	}
	if err := s.register(schema.ServiceName, &introspection{srv: s}, true); err != nil {
		panic("rpc: registering the introspection service: " + err.Error()) // a bug in this package
	}
}

// isReserved reports whether name is the reserved service's: it is left
// out of registries, listings and the debug page.
func isReserved(name string) bool { return name == schema.ServiceName }

// Describe answers "_seedrpc.Describe": the service named in args, or
// every registered service but this one when args.Service is "".
func (in *introspection) Describe(args schema.DescribeArgs, reply *schema.Description) error {
	services := *in.srv.services.Load()
	if args.Service != "" {
		svc := services[args.Service]
		if svc == nil {
			return fmt.Errorf("%w %q", ErrNoService, args.Service)
		}
		reply.Services = []schema.Service{describeService(svc)}
		return nil
	}
	reply.Services = make([]schema.Service, 0, len(services))
	for _, name := range sortedServiceNames(services) {
		reply.Services = append(reply.Services, describeService(services[name]))
	}
	return nil
}

// sortedServiceNames returns the names of the services, reserved ones left
// out, in order.
func sortedServiceNames(services map[string]*service) []string {
	names := make([]string, 0, len(services))
	for name := range services {
		if !isReserved(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func describeService(svc *service) schema.Service {
	names := make([]string, 0, len(svc.methods))
	for name := range svc.methods {
		names = append(names, name)
	}
	slices.Sort(names)
	out := schema.Service{Name: svc.name, Methods: make([]schema.Method, 0, len(names))}
	for _, name := range names {
		m := svc.methods[name]
		out.Methods = append(out.Methods, schema.NewMethod(name, m.argType, m.replyType))
	}
	return out
}
