package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// RPC over HTTP, as net/rpc does it: the client sends "CONNECT path
// HTTP/1.0", the server answers "200 Connected to Go RPC" and the
// connection then carries RPC. Here it carries seedrpc or net/rpc's gob,
// whichever the client speaks.

// connected is the status line of the answer to a CONNECT, net/rpc's.
const connected = "200 Connected to Go RPC"

// ServeHTTP answers an HTTP CONNECT and serves the connection until it
// ends, as net/rpc's Server does; any other method gets 405. The
// connection speaks seedrpc (DialHTTP) or net/rpc's gob (net/rpc's
// DialHTTP, or this package's with WithNetRPC).
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodConnect {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, "405 must CONNECT\n")
		return
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.opts.logger.Warn("rpc: hijacking an HTTP CONNECT", "remote", req.RemoteAddr, "err", err)
		return
	}
	// The http.Server may have set deadlines: an RPC connection is long-lived.
	nc.SetDeadline(time.Now().Add(serverWriteTimeout))
	if _, err := io.WriteString(nc, "HTTP/1.0 "+connected+"\n\n"); err != nil {
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	s.ServeConn(withBuffered(nc, brw.Reader))
}

// HandleHTTP registers s's RPC handler at rpcPath and its debug page
// (DebugHandler) at debugPath, on http.DefaultServeMux, as net/rpc does.
// Like net/rpc's, it panics if a path is registered already.
func (s *Server) HandleHTTP(rpcPath, debugPath string) {
	http.Handle(rpcPath, s)
	http.Handle(debugPath, s.DebugHandler())
}

// acceptConnect reads an HTTP CONNECT request that opens a connection
// accepted by Serve, and answers it. The request is read within the
// connection's buffer, so it costs no memory of its own.
func (c *serverConn) acceptConnect() error {
	if rt := c.srv.opts.readTimeout; rt > 0 { // a slow handshake is a slowloris too
		_ = c.nc.SetReadDeadline(time.Now().Add(rt))
		defer c.nc.SetReadDeadline(time.Time{})
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(string(line))
	if len(f) != 3 || f[0] != http.MethodConnect || !strings.HasPrefix(f[2], "HTTP/1.") {
		return fmt.Errorf("malformed request line %.64q", line)
	}
	for i := 0; ; i++ { // headers, up to the empty line
		if i == 100 {
			return errors.New("too many header lines")
		}
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	return c.w.Write(context.Background(), []byte("HTTP/1.0 "+connected+"\n\n"), true)
}

// DialHTTP returns a client of the server at addr whose connections open
// with HTTP CONNECT at DefaultRPCPath, as net/rpc's DialHTTP does; the
// server is one that HandleHTTP serves. Options are Dial's.
func DialHTTP(network, addr string, opts ...ClientOption) (*Client, error) {
	return DialHTTPPath(network, addr, DefaultRPCPath, opts...)
}

// DialHTTPPath is DialHTTP with the RPC handler at path.
func DialHTTPPath(network, addr, path string, opts ...ClientOption) (*Client, error) {
	c, err := newClient(network, addr, opts)
	if err != nil {
		return nil, err
	}
	dial := c.dial
	c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return httpConnect(ctx, nc, path)
	}
	return c.connect()
}

// httpConnect makes the CONNECT handshake on nc within ctx, and returns the
// connection ready for RPC, or closes it.
func httpConnect(ctx context.Context, nc net.Conn, path string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	br := bufio.NewReader(nc)
	_, err := io.WriteString(nc, "CONNECT "+path+" HTTP/1.0\n\n")
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("unexpected HTTP response: %s", resp.Status)
	}
	if err == nil && !stop() {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("HTTP CONNECT %s: %w", path, err)
	}
	nc.SetDeadline(time.Time{})
	return withBuffered(nc, br), nil
}

// bufConn is a connection whose reads come first from what a reader
// buffered while an HTTP handshake was read.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// withBuffered returns nc, reading first the bytes br holds, if any.
func withBuffered(nc net.Conn, br *bufio.Reader) net.Conn {
	if br == nil || br.Buffered() == 0 {
		return nc
	}
	return &bufConn{Conn: nc, r: br}
}
