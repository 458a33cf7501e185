package codec

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack is the MessagePack codec (wire id 1) and the default. It uses
// github.com/vmihailenco/msgpack/v5 with its standard wire format: structs
// are maps keyed by field name (or the `msgpack:"name"` tag), so bodies are
// readable by any MessagePack library and a field added to or removed from
// one side is ignored by the other.
//
// Encoders and decoders are pooled, so a call costs no allocation beyond
// the values it decodes (one per string, slice and map).
//
// Plain structs, and pointers to scalars, strings and byte slices, take a
// fast path (msgpack_fast.go) that produces the same bytes and the same
// decoded values as msgpack without its reflection; anything it is not
// sure of, in a type or in a body, goes the msgpack way.
type Msgpack struct{}

var _ Codec = Msgpack{}

// maxPooledBody is the largest body whose decoder goes back to the pool:
// decoding grows the decoder's scratch buffer to the longest string or
// binary in the body, and the pool should not pin large buffers.
const maxPooledBody = 64 << 10

// msgpackEncoder is a pooled encoder bound to an appendWriter, so encoding
// appends straight into the caller's slice.
type msgpackEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

// msgpackDecoder is a pooled decoder bound to a bytes.Reader. A
// bytes.Reader is an io.ByteScanner, so the decoder reads it directly
// without a bufio.Reader in between.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// The pools are caches of scratch objects, not state: what a call produces
// never depends on which pooled object it got.
var (
	msgpackEncoders = sync.Pool{New: func() any {
		e := new(msgpackEncoder)
		e.enc = msgpack.NewEncoder(&e.w)
		return e
	}}
	msgpackDecoders = sync.Pool{New: func() any {
		d := new(msgpackDecoder)
		// Never UsePreallocateValues (msgpack.Unmarshal turns it on): it
		// starts a goroutine per decoded type that never exits.
		d.dec = msgpack.NewDecoder(&d.r)
		return d
	}}
)

// ID returns 1.
func (Msgpack) ID() byte { return msgpackID }

// Name returns "msgpack".
func (Msgpack) Name() string { return "msgpack" }

// AppendMarshal appends the MessagePack encoding of v to dst. On error it
// returns dst unchanged. A type msgpack cannot encode is an error, also
// where msgpack itself would panic (a uintptr field, or a panicking
// MarshalMsgpack method).
func (Msgpack) AppendMarshal(dst []byte, v any) ([]byte, error) {
	if out, ok := fastMarshal(dst, v); ok {
		return out, nil
	}
	return appendMsgpack(dst, v)
}

// appendMsgpack is AppendMarshal through msgpack, without the fast path.
func appendMsgpack(dst []byte, v any) (out []byte, err error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	defer func() {
		// msgpack/v5 v5.4.1 panics on some types (a uintptr anywhere in
		// v calls a nil encoder func); the caller gets an error instead,
		// and the encoder is dropped.
		if p := recover(); p != nil {
			out, err = dst, fmt.Errorf("codec: msgpack marshal %T: panic: %v", v, p)
		}
	}()
	e.w.b = dst
	err = e.enc.Encode(v)
	out = e.w.b
	e.w.b = nil
	if err != nil {
		// Do not pool an encoder that failed half-way.
		return dst, fmt.Errorf("codec: msgpack marshal: %w", err)
	}
	msgpackEncoders.Put(e)
	return out, nil
}

// Unmarshal decodes the single MessagePack value in data into v, which must
// be a non-nil pointer.
//
// Before decoding, data is checked in one pass that allocates nothing: it
// must hold exactly one well-formed value, every declared string, binary,
// extension, array and map length must fit in the bytes that remain, and
// containers may nest at most 64 deep. Without the check msgpack allocates
// whatever length a body declares (5 bytes can ask for 32 GiB, a fatal
// error recover cannot catch). Every error wraps ErrMalformed, also where
// msgpack itself would panic (a uintptr in v, a panicking UnmarshalMsgpack
// method). (The fast path needs no separate pass: it checks every length
// as it reads, and a body it gives up on is checked and decoded from the
// start.)
func (Msgpack) Unmarshal(data []byte, v any) error {
	if fastUnmarshal(data, v) {
		return nil
	}
	return unmarshalMsgpack(data, v)
}

// unmarshalMsgpack is Unmarshal through checkMsgpack and msgpack, without
// the fast path.
func unmarshalMsgpack(data []byte, v any) (err error) {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer func() {
		// As in appendMsgpack: a uintptr in v calls a nil decoder
		// func. The decoder is dropped.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: msgpack unmarshal into %T: panic: %v", ErrMalformed, v, p)
		}
	}()
	d.r.Reset(data)
	err = d.dec.Decode(v)
	d.r.Reset(nil)
	if err != nil {
		// A decoder that failed half-way may hold state (a raw-message
		// recording), so it is not pooled.
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(data) <= maxPooledBody {
		msgpackDecoders.Put(d)
	}
	return nil
}

// appendWriter is the io.Writer and io.ByteWriter the pooled encoder writes
// to. It appends to b; having WriteByte keeps msgpack from wrapping it in an
// adapter that allocates per byte.
type appendWriter struct {
	b []byte
}

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}
