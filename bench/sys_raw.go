package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"
)

// Raw systems: the transport ceilings, not RPC frameworks. No service or
// method lookup, no reflection dispatch, no handler goroutine, no header
// beyond length (and seq for rawmux), no error path.
//
// By default they echo bytes: the client sends the msgpack encoding of the
// filled BenchmarkMessage (896 bytes, encoded once at dial time), the server
// copies the payload back, and the client compares every reply byte for byte
// with what it sent (a stronger check than decoding). This is what the
// issue's "0 allocs" rows measure: framing + syscalls + scheduling only.
// With -rawcodec both sides do real work instead: the client msgpack-encodes
// the request struct and decodes the reply into a struct; the server decodes
// the request into a struct and encodes it back, with msgpack v5 (reused
// encoders/decoders) or, with -rawcodec=seedrpc, seedrpc's codec (its own
// pools; see codecMode).

const (
	rawLenSize    = 4
	rawSeqSize    = 8
	rawMaxPayload = 1 << 20
	rawBufSize    = 64 << 10
)

var errRawFrameTooLarge = errors.New("bench: raw frame too large")

func rawTCPSystem() system {
	return system{
		name:      "rawtcp",
		newServer: func(rawCodec codecMode) (server, error) { return newRawServer(rawCodec, false), nil },
		dial:      dialRawTCP,
		describe:  "length-prefixed ping-pong, one connection per caller, echo in the read loop",
	}
}

func rawMuxSystem() system {
	return system{
		name:      "rawmux",
		newServer: func(rawCodec codecMode) (server, error) { return newRawServer(rawCodec, true), nil },
		dial:      dialRawMux,
		describe:  "seq-numbered frames multiplexed over -conns connections, one reader goroutine per conn, pending map, coalesced writes",
	}
}

// sliceWriter is an io.Writer (and msgpack byte writer) appending to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *sliceWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

// structCodec is a reusable msgpack encoder/decoder pair for one goroutine:
// msgpack v5's, or seedrpc's codec (codecSeedrpc), which keeps no state.
type structCodec struct {
	seedrpc bool
	w       sliceWriter
	enc     *msgpack.Encoder
	r       bytes.Reader
	dec     *msgpack.Decoder
}

// newStructCodec returns a codec of mode, v5's unless mode is codecSeedrpc.
func newStructCodec(mode codecMode) *structCodec {
	c := &structCodec{seedrpc: mode == codecSeedrpc}
	if c.seedrpc {
		return c // no v5 encoder or decoder to keep
	}
	c.enc = msgpack.NewEncoder(&c.w)
	c.dec = msgpack.NewDecoder(&c.r)
	return c
}

// appendEncode appends the encoding of m to dst.
func (c *structCodec) appendEncode(dst []byte, m *BenchmarkMessage) ([]byte, error) {
	if c.seedrpc {
		return seedrpcMsgpack.AppendMarshal(dst, m)
	}
	c.w.b = dst
	err := c.enc.Encode(m)
	dst, c.w.b = c.w.b, nil
	return dst, err
}

// decode decodes data into m.
func (c *structCodec) decode(data []byte, m *BenchmarkMessage) error {
	if c.seedrpc {
		return seedrpcMsgpack.Unmarshal(data, m)
	}
	c.r.Reset(data)
	c.dec.Reset(&c.r)
	return c.dec.Decode(m)
}

// rawServer echoes frames. In mux mode frames carry a seq and responses are
// coalesced: the read loop answers every complete frame already buffered and
// writes all the answers with one write.
type rawServer struct {
	rawCodec codecMode
	mux      bool

	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func newRawServer(rawCodec codecMode, mux bool) *rawServer {
	return &rawServer{rawCodec: rawCodec, mux: mux, conns: make(map[net.Conn]struct{})}
}

func (s *rawServer) Serve(lis net.Listener) error {
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
			s.serveConn(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *rawServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return nil
}

// serveConn runs until the connection fails or closes.
func (s *rawServer) serveConn(c net.Conn) error {
	hdrSize := rawLenSize
	if s.mux {
		hdrSize += rawSeqSize
	}
	r := bufio.NewReaderSize(c, rawBufSize)
	var (
		in    []byte
		out   []byte
		msg   BenchmarkMessage
		codec *structCodec
	)
	if s.rawCodec.on() {
		codec = newStructCodec(s.rawCodec)
	}
	for {
		hdr, err := r.Peek(hdrSize)
		if err != nil {
			return err
		}
		// The length counts everything after itself (the seq too in mux mode).
		n := int(binary.BigEndian.Uint32(hdr)) - (hdrSize - rawLenSize)
		if n < 0 || n > rawMaxPayload {
			return errRawFrameTooLarge
		}
		start := len(out)
		out = append(out, hdr...) // length patched below when re-encoding
		r.Discard(hdrSize)
		if cap(in) < n {
			in = make([]byte, n)
		}
		in = in[:n]
		if _, err := io.ReadFull(r, in); err != nil {
			return err
		}
		if s.rawCodec.on() {
			msg = BenchmarkMessage{}
			if err := codec.decode(in, &msg); err != nil {
				return err
			}
			if out, err = codec.appendEncode(out, &msg); err != nil {
				return err
			}
			binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-rawLenSize))
		} else {
			out = append(out, in...)
		}
		if !s.mux || !nextFrameBuffered(r, hdrSize) || len(out) >= rawBufSize {
			if _, err := c.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
}

// nextFrameBuffered reports whether a whole frame is already in r's buffer,
// so that answering it needs no read syscall.
func nextFrameBuffered(r *bufio.Reader, hdrSize int) bool {
	b := r.Buffered()
	if b < hdrSize {
		return false
	}
	hdr, _ := r.Peek(rawLenSize)
	return b >= rawLenSize+int(binary.BigEndian.Uint32(hdr))
}

// rawTCPClient gives every caller its own connection and buffers.
type rawTCPClient struct {
	rawCodec bool
	want     []byte // the expected echo (no-codec mode)
	callers  []*rawTCPCaller
}

type rawTCPCaller struct {
	conn  net.Conn
	r     *bufio.Reader
	frame []byte // request frame (prebuilt in no-codec mode)
	resp  []byte
	codec *structCodec
}

func encodeFilled() ([]byte, error) {
	return newStructCodec(codecV5).appendEncode(nil, newMessage())
}

func dialRawTCP(cfg dialConfig) (client, error) {
	want, err := encodeFilled()
	if err != nil {
		return nil, err
	}
	c := &rawTCPClient{rawCodec: cfg.rawCodec.on(), want: want}
	for range cfg.callers {
		conn, err := net.Dial("tcp", cfg.addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		cl := &rawTCPCaller{conn: conn, r: bufio.NewReaderSize(conn, rawBufSize)}
		if cfg.rawCodec.on() {
			cl.codec = newStructCodec(cfg.rawCodec)
		} else {
			cl.frame = binary.BigEndian.AppendUint32(nil, uint32(len(want)))
			cl.frame = append(cl.frame, want...)
		}
		c.callers = append(c.callers, cl)
	}
	return c, nil
}

func (c *rawTCPClient) decodesReply() bool { return c.rawCodec }

func (c *rawTCPClient) Call(caller int, req, reply *BenchmarkMessage) error {
	cl := c.callers[caller]
	if c.rawCodec {
		var err error
		cl.frame = append(cl.frame[:0], 0, 0, 0, 0)
		if cl.frame, err = cl.codec.appendEncode(cl.frame, req); err != nil {
			return err
		}
		binary.BigEndian.PutUint32(cl.frame, uint32(len(cl.frame)-rawLenSize))
	}
	if _, err := cl.conn.Write(cl.frame); err != nil {
		return err
	}
	hdr, err := cl.r.Peek(rawLenSize)
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr))
	if n > rawMaxPayload {
		return errRawFrameTooLarge
	}
	cl.r.Discard(rawLenSize)
	if cap(cl.resp) < n {
		cl.resp = make([]byte, n)
	}
	cl.resp = cl.resp[:n]
	if _, err := io.ReadFull(cl.r, cl.resp); err != nil {
		return err
	}
	if c.rawCodec {
		return cl.codec.decode(cl.resp, reply)
	}
	if !bytes.Equal(cl.resp, c.want) {
		return fmt.Errorf("%w: echoed bytes differ", errMismatch)
	}
	return nil
}

func (c *rawTCPClient) Close() error {
	for _, cl := range c.callers {
		cl.conn.Close()
	}
	return nil
}

// rawMuxClient multiplexes callers over -conns connections.
type rawMuxClient struct {
	rawCodec bool
	want     []byte
	conns    []*muxConn
	calls    []*muxCall // one per caller, reused
}

// muxCall is a caller's reusable call slot.
type muxCall struct {
	done  chan struct{} // capacity 1: the reader signals one completion per call
	resp  []byte        // written by the reader before signalling done
	err   error         // set by the reader before signalling done
	frame []byte        // request frame scratch (codec mode)
	codec *structCodec
}

// muxConn is one multiplexed connection: a mutex-serialized, coalescing
// writer and one reader goroutine that routes replies by seq.
type muxConn struct {
	conn net.Conn
	seq  atomic.Uint64
	done chan struct{} // closed when the reader exits

	wmu      sync.Mutex // guards wbuf, spare, flushing
	wbuf     []byte     // frames waiting for the flusher
	spare    []byte
	flushing bool // a caller is writing; others only append

	pmu     sync.Mutex // guards pending, err
	pending map[uint64]*muxCall
	err     error
}

func dialRawMux(cfg dialConfig) (client, error) {
	want, err := encodeFilled()
	if err != nil {
		return nil, err
	}
	c := &rawMuxClient{rawCodec: cfg.rawCodec.on(), want: want}
	for range cfg.conns {
		conn, err := net.Dial("tcp", cfg.addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		mc := &muxConn{conn: conn, done: make(chan struct{}), pending: make(map[uint64]*muxCall)}
		go mc.readLoop()
		c.conns = append(c.conns, mc)
	}
	for range cfg.callers {
		call := &muxCall{done: make(chan struct{}, 1)}
		if cfg.rawCodec.on() {
			call.codec = newStructCodec(cfg.rawCodec)
		}
		c.calls = append(c.calls, call)
	}
	return c, nil
}

func (c *rawMuxClient) decodesReply() bool { return c.rawCodec }

func (c *rawMuxClient) Call(caller int, req, reply *BenchmarkMessage) error {
	call := c.calls[caller]
	mc := c.conns[caller%len(c.conns)]
	payload := c.want
	if c.rawCodec {
		var err error
		if call.frame, err = call.codec.appendEncode(call.frame[:0], req); err != nil {
			return err
		}
		payload = call.frame
	}
	seq := mc.seq.Add(1)
	mc.pmu.Lock()
	if mc.err != nil {
		err := mc.err
		mc.pmu.Unlock()
		return err
	}
	mc.pending[seq] = call
	mc.pmu.Unlock()
	if err := mc.write(seq, payload); err != nil {
		mc.conn.Close() // the reader fails every pending call, this one included
	}
	<-call.done
	if call.err != nil {
		return call.err
	}
	if c.rawCodec {
		return call.codec.decode(call.resp, reply)
	}
	if !bytes.Equal(call.resp, c.want) {
		return fmt.Errorf("%w: echoed bytes differ", errMismatch)
	}
	return nil
}

// write queues one frame; the first caller to find no flush in progress
// writes everything queued (its frame and those appended meanwhile) until
// the queue is empty, so concurrent callers share write syscalls.
func (mc *muxConn) write(seq uint64, payload []byte) error {
	mc.wmu.Lock()
	mc.wbuf = binary.BigEndian.AppendUint32(mc.wbuf, uint32(rawSeqSize+len(payload)))
	mc.wbuf = binary.BigEndian.AppendUint64(mc.wbuf, seq)
	mc.wbuf = append(mc.wbuf, payload...)
	if mc.flushing {
		mc.wmu.Unlock()
		return nil
	}
	mc.flushing = true
	var err error
	for len(mc.wbuf) > 0 && err == nil {
		buf := mc.wbuf
		mc.wbuf = mc.spare[:0]
		mc.wmu.Unlock()
		_, err = mc.conn.Write(buf)
		mc.wmu.Lock()
		mc.spare = buf[:0]
	}
	if err != nil {
		mc.wbuf = mc.wbuf[:0]
	}
	mc.flushing = false
	mc.wmu.Unlock()
	return err
}

// readLoop routes replies to their callers until the connection fails, then
// fails every pending call with that error.
func (mc *muxConn) readLoop() {
	defer close(mc.done)
	err := mc.read()
	mc.pmu.Lock()
	mc.err = err
	for seq, call := range mc.pending {
		call.err = err
		call.done <- struct{}{}
		delete(mc.pending, seq)
	}
	mc.pmu.Unlock()
}

func (mc *muxConn) read() error {
	r := bufio.NewReaderSize(mc.conn, rawBufSize)
	const hdrSize = rawLenSize + rawSeqSize
	for {
		hdr, err := r.Peek(hdrSize)
		if err != nil {
			return fmt.Errorf("bench: rawmux read: %w", err)
		}
		n := int(binary.BigEndian.Uint32(hdr)) - rawSeqSize
		seq := binary.BigEndian.Uint64(hdr[rawLenSize:])
		if n < 0 || n > rawMaxPayload {
			return errRawFrameTooLarge
		}
		r.Discard(hdrSize)
		mc.pmu.Lock()
		call := mc.pending[seq]
		delete(mc.pending, seq)
		mc.pmu.Unlock()
		if call == nil {
			return fmt.Errorf("bench: rawmux reply for unknown seq %d", seq)
		}
		if cap(call.resp) < n {
			call.resp = make([]byte, n)
		}
		call.resp = call.resp[:n]
		if _, err := io.ReadFull(r, call.resp); err != nil {
			call.err = err
			call.done <- struct{}{}
			return err
		}
		call.err = nil
		call.done <- struct{}{}
	}
}

func (c *rawMuxClient) Close() error {
	for _, mc := range c.conns {
		mc.conn.Close()
		<-mc.done
	}
	return nil
}
