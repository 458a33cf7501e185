package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/iotest"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

func newTestFrameReader(r io.Reader, maxFrame int, b *memBudget) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 32<<10), maxFrame: maxFrame, budget: b}
}

// claimFrame is a request header that claims n body bytes, with none of them.
func claimFrame(seq uint64, method string, n int) []byte {
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(method))
	wire.PutHeader(b, &wire.Header{Type: wire.TypeRequest, Codec: 1, Seq: seq, MethodLen: uint16(len(method)), BodyLen: uint32(n)})
	return append(b, method...)
}

type payloadResult struct {
	fb  *frameBuf
	err error
}

// TestFrameReaderGrowsAsBytesArrive: a header claiming 16 MiB costs nothing
// until bytes come, and what is held stays within twice what arrived.
func TestFrameReaderGrowsAsBytesArrive(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	b := newMemBudget(defaultMaxBuffered)
	fr := newTestFrameReader(pr, wire.DefaultMaxFrameSize, b)
	const n = wire.DefaultMaxFrameSize - 1
	go pw.Write(claimFrame(1, "", n))
	h, err := fr.next()
	if err != nil || h.PayloadLen() != n {
		t.Fatalf("next() = %+v, %v; want a header claiming %d bytes", h, err, n)
	}
	res := make(chan payloadResult, 1)
	go func() {
		fb, err := fr.payload(n)
		res <- payloadResult{fb, err}
	}()
	sent := 0
	send := func(k int) {
		t.Helper()
		p := make([]byte, k)
		for i := range p {
			p[i] = byte(sent + i)
		}
		if _, err := pw.Write(p); err != nil { // returns once the reader took it all
			t.Fatal(err)
		}
		sent += k
	}
	send(10)
	if got := b.inUse(); got != 0 {
		t.Errorf("budget in use after a 16 MiB claim and 10 bytes = %d, want 0 (the first chunk is free)", got)
	}
	send(1 << 20)
	if got := b.inUse(); got > 2*int64(sent) || got < int64(sent)-freePayload-32<<10 {
		t.Errorf("budget in use after %d bytes = %d, want between the bytes held and twice them", sent, got)
	}
	send(n - sent)
	var r payloadResult
	select {
	case r = <-res:
	case <-time.After(defaultTestTimeout):
		t.Fatal("payload did not return")
	}
	if r.err != nil || len(r.fb.b) != n {
		t.Fatalf("payload() = %d bytes, %v; want %d", len(r.fb.b), r.err, n)
	}
	for _, i := range []int{0, 9, 10, 1 << 20, n - 1} {
		if r.fb.b[i] != byte(i) {
			t.Fatalf("payload byte %d = %d, want %d", i, r.fb.b[i], byte(i))
		}
	}
	r.fb.release()
	if got := b.inUse(); got != 0 {
		t.Errorf("budget in use after release = %d, want 0", got)
	}
}

// TestFrameReaderBackpressure: with the budget spent, a large frame waits
// (its connection is not read), a small frame goes on, and the large one
// completes once bytes are released.
func TestFrameReaderBackpressure(t *testing.T) {
	b := newMemBudget(1 << 20)  // large frames: 896 KiB
	stop := make(chan struct{}) // ends waits if the test fails
	defer close(stop)
	readFrame := func(n int) (*frameBuf, error) {
		fr := newTestFrameReader(bytes.NewReader(append(claimFrame(1, "", n), make([]byte, n)...)), 4<<20, b)
		fr.done = stop
		if _, err := fr.next(); err != nil {
			return nil, err
		}
		return fr.payload(n)
	}
	a, err := readFrame(512 << 10) // charged 508 KiB
	if err != nil {
		t.Fatal(err)
	}
	over, err := readFrame(2 << 20) // does not fit: takes the overdraft
	if err != nil {
		t.Fatal(err)
	}
	if !over.od {
		t.Fatal("a frame beyond the budget did not take the overdraft")
	}
	res := make(chan payloadResult, 1)
	go func() {
		fb, err := readFrame(512 << 10)
		res <- payloadResult{fb, err}
	}()
	waitFor(t, "the large frame to wait for budget", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.wake != nil
	})
	small, err := readFrame(60 << 10)
	if err != nil {
		t.Fatalf("a small frame with the budget spent by large ones: %v", err)
	}
	small.release()
	select {
	case r := <-res:
		t.Fatalf("the large frame was read while the budget was spent (%v)", r.err)
	default:
	}
	a.release()
	var r payloadResult
	select {
	case r = <-res:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the large frame did not complete after a release")
	}
	if r.err != nil || len(r.fb.b) != 512<<10 {
		t.Fatalf("large frame after a release = %v", r.err)
	}
	r.fb.release()
	over.release()
	if got := b.inUse(); got != 0 {
		t.Errorf("budget in use after every release = %d, want 0", got)
	}
}

// TestFrameReaderReadTimeout: a frame whose first byte arrived must be
// complete within the read timeout; the gap before it does not count.
func TestFrameReaderReadTimeout(t *testing.T) {
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	fr := newTestFrameReader(sc, wire.DefaultMaxFrameSize, newMemBudget(defaultMaxBuffered))
	fr.nc, fr.timeout = sc, 100*time.Millisecond
	errc := make(chan error, 1)
	go func() {
		_, err := fr.next()
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond) // idle longer than the read timeout: allowed
	start := time.Now()
	if _, err := cc.Write(claimFrame(1, "", 10)[:5]); err != nil {
		t.Fatal(err)
	}
	err := recvErr(t, errc, "next() on a partial header")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("next() on a partial header = %v, want a read timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("partial header closed after %v, want about 100ms", d)
	}
}

// FuzzFrameReader feeds arbitrary bytes, whole or one byte per read, to the
// frame reader with a small frame limit and budget, handling each frame as
// the server does: it must never panic, must return each payload as sent,
// and must give back every byte charged.
func FuzzFrameReader(f *testing.F) {
	const maxFrame = 16 << 10
	req := func(seq uint64, method string, body []byte) []byte {
		return append(claimFrame(seq, method, len(body)), body...)
	}
	huge := claimFrame(1, "Calc.Add", 0)
	binary.BigEndian.PutUint32(huge[20:], 0xffffffff)
	ping := make([]byte, wire.HeaderSize)
	wire.PutHeader(ping, &wire.Header{Type: wire.TypePing, BodyLen: maxFrame + 1})
	seeds := [][]byte{
		req(1, "Calc.Add", []byte{0x82, 0xa1, 'A', 1, 0xa1, 'B', 2}),
		huge,                                    // a 4 GiB claim
		claimFrame(2, "Calc.Echo", maxFrame-20), // claim just under the limit, then nothing
		append(claimFrame(3, "Calc.Echo", maxFrame-20), 1, 2, 3),                                     // ... a trickle
		append(req(4, "Calc.Echo", make([]byte, 3*maxFrame/2)), req(5, "Calc.Add", []byte{0x80})...), // oversized, then a call
		req(6, "Calc.Echo", make([]byte, 5*maxFrame/2)),                                              // over twice the limit
		append(req(7, "Calc.Echo", make([]byte, maxFrame-9)), req(8, "Calc.Echo", make([]byte, 9000))...),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0x5e, 0xed, 0x02},
		append(ping, make([]byte, maxFrame+1)...),
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, trickle bool) {
		b := newMemBudget(8 << 10) // below the frame limit: large frames take the overdraft
		src := bytes.NewReader(data)
		var r io.Reader = src
		if trickle {
			r = iotest.OneByteReader(src)
		}
		fr := newTestFrameReader(r, maxFrame, b)
		consumed := func() int { return len(data) - src.Len() - fr.br.Buffered() }
		for range 64 {
			h, err := fr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isWireError(err) {
					t.Fatalf("next() = %v, want EOF or a wire error", err)
				}
				break
			}
			n := h.PayloadLen()
			if n > hardLimit(maxFrame) || (n > maxFrame && h.Type != wire.TypeRequest && h.Type != wire.TypeOneway && h.Type != wire.TypeResponse) {
				t.Fatalf("next() accepted a %s frame of %d bytes", h.Type, n)
			}
			if n > maxFrame || (h.Type != wire.TypeRequest && h.Type != wire.TypeOneway && h.Type != wire.TypeResponse) {
				if err := fr.skip(n); err != nil {
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("skip(%d) = %v, want io.ErrUnexpectedEOF", n, err)
					}
					break
				}
				continue
			}
			off := consumed()
			fb, err := fr.payload(n)
			if err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("payload(%d) = %v, want io.ErrUnexpectedEOF", n, err)
				}
				break
			}
			if !bytes.Equal(fb.b, data[off:off+n]) {
				t.Fatalf("payload(%d) differs from the bytes sent", n)
			}
			if _, c := sizeClass(n); cap(fb.b) != c {
				t.Fatalf("payload(%d) in a buffer of %d bytes, want %d", n, cap(fb.b), c)
			}
			fb.release()
		}
		if got := b.inUse(); got != 0 {
			t.Fatalf("budget in use after every release = %d, want 0", got)
		}
		if b.overdrawn || fr.od {
			t.Fatal("the overdraft was not given back")
		}
	})
}
