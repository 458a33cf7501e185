package main

import (
	"context"
	"errors"
	"net"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// grpc-msgpack: grpc-go with a hand-written ServiceDesc (no protoc) and a
// msgpack codec registered under the content subtype "msgpack", so requests
// travel as "application/grpc+msgpack". The client opens -conns ClientConns
// (one HTTP/2 connection each); caller i uses ClientConn i % conns.

const grpcEchoMethod = "/bench.Echo/Echo"

// grpcMsgpackCodec is an encoding.Codec over vmihailenco/msgpack v5 (structs
// as maps of field names, as every other msgpack system here).
type grpcMsgpackCodec struct{}

func (grpcMsgpackCodec) Marshal(v any) ([]byte, error)      { return msgpack.Marshal(v) }
func (grpcMsgpackCodec) Unmarshal(data []byte, v any) error { return msgpack.Unmarshal(data, v) }
func (grpcMsgpackCodec) Name() string                       { return "msgpack" }

// registerGRPCCodec registers the codec with grpc's process-global codec
// registry, which is how a grpc server picks a codec by content subtype.
// grpc requires it before any server or client exists and it is not safe
// for concurrent use, so main (and TestMain) call it once at start-up.
func registerGRPCCodec() { encoding.RegisterCodec(grpcMsgpackCodec{}) }

// grpcEchoServer is the handler type of the hand-written service.
type grpcEchoServer interface {
	Echo(ctx context.Context, in *BenchmarkMessage) (*BenchmarkMessage, error)
}

type grpcEcho struct{}

func (grpcEcho) Echo(_ context.Context, in *BenchmarkMessage) (*BenchmarkMessage, error) {
	return in, nil
}

// grpcEchoDesc is what protoc-gen-go-grpc would generate for
// `service Echo { rpc Echo(BenchmarkMessage) returns (BenchmarkMessage); }`.
func grpcEchoDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "bench.Echo",
		HandlerType: (*grpcEchoServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := new(BenchmarkMessage)
				if err := dec(in); err != nil {
					return nil, err
				}
				if icpt == nil {
					return srv.(grpcEchoServer).Echo(ctx, in)
				}
				info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcEchoMethod}
				return icpt(ctx, in, info, func(ctx context.Context, req any) (any, error) {
					return srv.(grpcEchoServer).Echo(ctx, req.(*BenchmarkMessage))
				})
			},
		}},
		Metadata: "bench.proto",
	}
}

func grpcMsgpackSystem() system {
	return system{
		name: "grpc-msgpack",
		newServer: func(codecMode) (server, error) {
			s := grpc.NewServer()
			s.RegisterService(grpcEchoDesc(), grpcEcho{})
			return grpcServer{s}, nil
		},
		dial:     dialGRPC,
		describe: "grpc-go over HTTP/2, msgpack codec registered as content subtype, hand-written ServiceDesc",
	}
}

type grpcServer struct{ s *grpc.Server }

func (g grpcServer) Serve(lis net.Listener) error { return g.s.Serve(lis) }
func (g grpcServer) Close() error                 { g.s.Stop(); return nil }

type grpcClient struct {
	conns []*grpc.ClientConn
}

func dialGRPC(cfg dialConfig) (client, error) {
	c := &grpcClient{}
	for range cfg.conns {
		cc, err := grpc.NewClient("passthrough:///"+cfg.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.CallContentSubtype("msgpack")),
		)
		if err != nil {
			c.Close()
			return nil, err
		}
		cc.Connect()
		c.conns = append(c.conns, cc)
	}
	return c, nil
}

func (c *grpcClient) Call(caller int, req, reply *BenchmarkMessage) error {
	return c.conns[caller%len(c.conns)].Invoke(context.Background(), grpcEchoMethod, req, reply)
}

func (c *grpcClient) Close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}
