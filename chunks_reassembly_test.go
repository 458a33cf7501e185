package rpc

import (
	"bytes"
	"testing"

	"github.com/seedrpc/rpc/internal/wire"
)

// chunkedFrames returns the frames of a chunked request of seq whose body
// is body, cut as writeChunked cuts it.
func chunkedFrames(seq uint64, body []byte) []byte {
	var out []byte
	for off := 0; off < len(body); off += chunkSize {
		n := min(chunkSize, len(body)-off)
		h := wire.Header{Type: wire.TypeContinuation, Seq: seq, BodyLen: uint32(n)}
		if off == 0 {
			h.Type, h.Codec = wire.TypeRequest, 1
		}
		if off+n < len(body) {
			h.Codec |= wire.FlagMore
		}
		var hb [wire.HeaderSize]byte
		wire.PutHeader(hb[:], &h)
		out = append(append(out, hb[:]...), body[off:off+n]...)
	}
	return out
}

// TestReassemblySizedFromPrevious: a chunked message a little over a power
// of two is reassembled in a buffer of its size class once the connection
// saw one like it (not twice its size, after a further copy), the budget
// is charged that buffer while it is held, and the bytes are right.
func TestReassemblySizedFromPrevious(t *testing.T) {
	resetBigPool()
	t.Cleanup(func() { resetBigPool() })
	const n = 1<<20 + 40
	b := newMemBudget(64 << 20)
	var stream []byte
	bodies := [][]byte{bytes.Repeat([]byte{1}, n), bytes.Repeat([]byte{2}, n)}
	for i, body := range bodies {
		body[n-1] = byte(10 + i)
		stream = append(stream, chunkedFrames(uint64(i+1), body)...)
	}
	fr := newTestFrameReader(bytes.NewReader(stream), 16<<20, b)
	var ps partials
	for i, body := range bodies {
		var p *partial
		for p == nil {
			h, err := fr.next()
			if err != nil {
				t.Fatal(err)
			}
			if h.Type == wire.TypeRequest {
				err = ps.start(fr, &h, false)
			} else {
				p, err = ps.next(fr, &h)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(p.fb.b, body) {
			t.Fatalf("message %d reassembled wrong", i)
		}
		_, want := bigClassFor(2 << 20)
		if i == 1 {
			_, want = bigClassFor(n)
		}
		if cap(p.fb.b) != want {
			t.Errorf("message %d: reassembled in %d bytes, want %d", i, cap(p.fb.b), want)
		}
		if got := b.inUse(); got != charge(cap(p.fb.b)) {
			t.Errorf("message %d: budget in use %d, want %d", i, got, charge(cap(p.fb.b)))
		}
		p.fb.release()
		if got := b.inUse(); got != 0 {
			t.Errorf("budget in use %d after release", got)
		}
	}
}
