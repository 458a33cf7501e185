package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"net"
	netrpc "net/rpc"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// net/rpc's own protocol: a gob stream each way, a request being a Request
// header then the args, a response a Response header then the reply. These
// codecs speak it as net/rpc's (unexported) codecs do, with two bounds
// net/rpc lacks: a message longer than the max frame size is refused before
// the decoder allocates for it, and writes are bounded in time.

// gobServerCodec serves a net/rpc client on a connection of a Server.
type gobServerCodec struct {
	dec *gob.Decoder
	enc *gob.Encoder
	buf bytes.Buffer // the encoder's output: one response, written whole
	w   *wire.Writer // the connection's writer: bounded, serialized writes
	nc  net.Conn
}

func newGobServerCodec(c *serverConn) *gobServerCodec {
	g := &gobServerCodec{w: c.w, nc: c.nc}
	g.dec = gob.NewDecoder(&gobLimit{r: c.br, max: c.srv.opts.maxFrame})
	g.enc = gob.NewEncoder(&g.buf)
	return g
}

func (g *gobServerCodec) ReadRequestHeader(r *netrpc.Request) error { return g.dec.Decode(r) }
func (g *gobServerCodec) ReadRequestBody(body any) error            { return g.dec.Decode(body) }

// WriteResponse encodes the response and queues it, whole, on the
// connection's writer. A response that does not encode leaves the encoder
// out of step with the stream, so the connection is closed, as net/rpc
// does. The caller serializes calls.
func (g *gobServerCodec) WriteResponse(r *netrpc.Response, body any) error {
	g.buf.Reset()
	err := g.enc.Encode(r)
	if err == nil {
		err = g.enc.Encode(body)
	}
	if err != nil {
		g.nc.Close()
		return fmt.Errorf("rpc: gob: encoding the response of %s: %w", r.ServiceMethod, err)
	}
	err = g.w.Write(context.Background(), g.buf.Bytes(), false) // copied when queued
	if g.buf.Cap() > 1<<20 {
		g.buf = bytes.Buffer{} // keep no large reply's buffer for the connection's life
	}
	return err
}

func (g *gobServerCodec) Close() error { return g.nc.Close() }

// gobClientCodec calls a net/rpc server (WithNetRPC). Its writes come from
// one goroutine of the Client at a time.
type gobClientCodec struct {
	nc      net.Conn
	dec     *gob.Decoder
	enc     *gob.Encoder
	bw      *bufio.Writer
	timeout time.Duration // bounds each write
}

func newGobClientCodec(nc net.Conn, maxFrame int, writeTimeout time.Duration) *gobClientCodec {
	bw := bufio.NewWriter(nc)
	return &gobClientCodec{
		nc:      nc,
		dec:     gob.NewDecoder(&gobLimit{r: bufio.NewReader(nc), max: maxFrame}),
		enc:     gob.NewEncoder(bw),
		bw:      bw,
		timeout: writeTimeout,
	}
}

// WriteRequest writes a request within the timeout.
func (g *gobClientCodec) WriteRequest(r *netrpc.Request, body any) error {
	g.nc.SetWriteDeadline(time.Now().Add(g.timeout))
	err := g.enc.Encode(r)
	if err == nil {
		err = g.enc.Encode(body)
	}
	if err == nil {
		err = g.bw.Flush()
	}
	return err
}

// writeErrorBreaks says that a request that failed to encode or to be
// written leaves the stream out of step: the client closes the connection
// once the call has the write's error, and calls in flight on it fail with
// ErrShutdown.
func (g *gobClientCodec) writeErrorBreaks() {}

func (g *gobClientCodec) ReadResponseHeader(r *netrpc.Response) error { return g.dec.Decode(r) }
func (g *gobClientCodec) ReadResponseBody(body any) error             { return g.dec.Decode(body) } // nil discards
func (g *gobClientCodec) Close() error                                { return g.nc.Close() }

// gobLimit passes a gob stream through to a decoder, checking each
// message's length against max before the decoder allocates for it (gob's
// own bound is 1 GiB). It is an io.ByteReader, so the decoder adds no
// buffer of its own.
type gobLimit struct {
	r    *bufio.Reader
	max  int
	left int // bytes left of the current message, its length included
}

// next reads the length of the next message: one byte under 128, or a
// byte holding the negated count of the big-endian bytes that follow.
func (g *gobLimit) next() error {
	p, err := g.r.Peek(1)
	if err != nil {
		return err
	}
	n, hdr := uint64(p[0]), 1
	if p[0] >= 0x80 {
		k := 256 - int(p[0])
		if k > 8 {
			return fmt.Errorf("rpc: gob: malformed message length % x", p[0])
		}
		if p, err = g.r.Peek(1 + k); err != nil {
			return err
		}
		n = 0
		for _, b := range p[1:] {
			n = n<<8 | uint64(b)
		}
		hdr += k
	}
	if n > uint64(g.max) {
		return fmt.Errorf("rpc: gob message of %d bytes exceeds the frame limit %d", n, g.max)
	}
	g.left = hdr + int(n)
	return nil
}

func (g *gobLimit) Read(p []byte) (int, error) {
	if g.left == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	if len(p) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	g.left -= n
	return n, err
}

func (g *gobLimit) ReadByte() (byte, error) {
	if g.left == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	b, err := g.r.ReadByte()
	if err == nil {
		g.left--
	}
	return b, err
}
