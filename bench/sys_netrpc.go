package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// net/rpc systems: the stdlib server with EchoService registered as "Echo",
// and -conns *rpc.Client connections; caller i uses connection i % conns.
// netrpc-gob uses net/rpc's own gob codec; netrpc-msgpack a msgpack codec
// (below) with the same framing shape as gob's: a header then a body, one
// flush per message.

func netrpcGobSystem() system {
	return system{
		name:      "netrpc-gob",
		newServer: func(codecMode) (server, error) { return newNetrpcServer(nil) },
		dial: func(cfg dialConfig) (client, error) {
			return dialNetrpc(cfg, func(c net.Conn) *rpc.Client { return rpc.NewClient(c) })
		},
		describe: "stdlib net/rpc, gob codec, one goroutine per request on the server",
	}
}

func netrpcMsgpackSystem() system {
	return system{
		name: "netrpc-msgpack",
		newServer: func(codecMode) (server, error) {
			return newNetrpcServer(func(c net.Conn) rpc.ServerCodec { return newMsgpackServerCodec(c) })
		},
		dial: func(cfg dialConfig) (client, error) {
			return dialNetrpc(cfg, func(c net.Conn) *rpc.Client {
				return rpc.NewClientWithCodec(newMsgpackClientCodec(c))
			})
		},
		describe: "stdlib net/rpc, msgpack codec (vmihailenco v5, structs as maps)",
	}
}

// netrpcServer serves an *rpc.Server and tracks its connections so Close can
// end them.
type netrpcServer struct {
	srv      *rpc.Server
	newCodec func(net.Conn) rpc.ServerCodec // nil: gob

	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func newNetrpcServer(newCodec func(net.Conn) rpc.ServerCodec) (*netrpcServer, error) {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Echo", EchoService{}); err != nil {
		return nil, err
	}
	return &netrpcServer{srv: srv, newCodec: newCodec, conns: make(map[net.Conn]struct{})}, nil
}

func (s *netrpcServer) Serve(lis net.Listener) error {
	defer s.wg.Wait()
	for {
		c, err := lis.Accept()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.newCodec == nil {
				s.srv.ServeConn(c)
			} else {
				s.srv.ServeCodec(s.newCodec(c))
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *netrpcServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return nil
}

// netrpcClient holds -conns net/rpc clients.
type netrpcClient struct {
	clients []*rpc.Client
}

func dialNetrpc(cfg dialConfig, wrap func(net.Conn) *rpc.Client) (client, error) {
	c := &netrpcClient{}
	for range cfg.conns {
		conn, err := net.Dial("tcp", cfg.addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.clients = append(c.clients, wrap(conn))
	}
	return c, nil
}

func (c *netrpcClient) Call(caller int, req, reply *BenchmarkMessage) error {
	return c.clients[caller%len(c.clients)].Call("Echo.Echo", req, reply)
}

func (c *netrpcClient) Close() error {
	var errs []error
	for _, cl := range c.clients {
		if err := cl.Close(); err != nil && !errors.Is(err, rpc.ErrShutdown) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// msgpackClientCodec is an rpc.ClientCodec over msgpack: a request is the
// array-free sequence (ServiceMethod string, Seq uint64, body); a response is
// (ServiceMethod, Seq, Error string, body). net/rpc serializes writes and
// reads, so the encoder and decoder are reused without locks.
type msgpackClientCodec struct {
	rwc io.ReadWriteCloser
	w   *bufio.Writer
	enc *msgpack.Encoder
	dec *msgpack.Decoder
}

func newMsgpackClientCodec(rwc io.ReadWriteCloser) *msgpackClientCodec {
	w := bufio.NewWriter(rwc)
	return &msgpackClientCodec{
		rwc: rwc, w: w,
		enc: msgpack.NewEncoder(w),
		dec: msgpack.NewDecoder(bufio.NewReader(rwc)),
	}
}

func (c *msgpackClientCodec) WriteRequest(r *rpc.Request, body any) error {
	if err := c.enc.EncodeString(r.ServiceMethod); err != nil {
		return err
	}
	if err := c.enc.EncodeUint(r.Seq); err != nil {
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *msgpackClientCodec) ReadResponseHeader(r *rpc.Response) error {
	var err error
	if r.ServiceMethod, err = c.dec.DecodeString(); err != nil {
		return err
	}
	if r.Seq, err = c.dec.DecodeUint64(); err != nil {
		return err
	}
	r.Error, err = c.dec.DecodeString()
	return err
}

func (c *msgpackClientCodec) ReadResponseBody(body any) error {
	if body == nil {
		return c.dec.Skip()
	}
	return c.dec.Decode(body)
}

func (c *msgpackClientCodec) Close() error { return c.rwc.Close() }

// msgpackServerCodec is the server half of msgpackClientCodec.
type msgpackServerCodec struct {
	rwc io.ReadWriteCloser
	w   *bufio.Writer
	enc *msgpack.Encoder
	dec *msgpack.Decoder
}

func newMsgpackServerCodec(rwc io.ReadWriteCloser) *msgpackServerCodec {
	w := bufio.NewWriter(rwc)
	return &msgpackServerCodec{
		rwc: rwc, w: w,
		enc: msgpack.NewEncoder(w),
		dec: msgpack.NewDecoder(bufio.NewReader(rwc)),
	}
}

func (c *msgpackServerCodec) ReadRequestHeader(r *rpc.Request) error {
	var err error
	if r.ServiceMethod, err = c.dec.DecodeString(); err != nil {
		return err
	}
	r.Seq, err = c.dec.DecodeUint64()
	return err
}

func (c *msgpackServerCodec) ReadRequestBody(body any) error {
	if body == nil {
		return c.dec.Skip()
	}
	return c.dec.Decode(body)
}

// WriteResponse is called by net/rpc under its sending mutex.
func (c *msgpackServerCodec) WriteResponse(r *rpc.Response, body any) error {
	if err := c.enc.EncodeString(r.ServiceMethod); err != nil {
		return err
	}
	if err := c.enc.EncodeUint(r.Seq); err != nil {
		return err
	}
	if err := c.enc.EncodeString(r.Error); err != nil {
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		return fmt.Errorf("bench: encode response: %w", err)
	}
	return c.w.Flush()
}

func (c *msgpackServerCodec) Close() error { return c.rwc.Close() }
