package wire

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// The codec byte of a header (issue 12): bits 0-3 are the body's codec id,
// bits 4-6 its compression, bit 7 says that continuation frames follow.
const (
	// CodecMask selects the codec id.
	CodecMask = 0x0F
	// CompressMask selects the body compression.
	CompressMask = 0x70
	// CompressS2 marks a body compressed as one S2 block (internal/compress).
	// Method, metadata and error bodies are never compressed; bodylen is the
	// compressed (on-wire) length.
	CompressS2 = 0x10
	// FlagMore marks a request or response frame (or a continuation frame)
	// followed by a continuation frame of the same seq that carries more of
	// its body.
	FlagMore = 0x80
)

// TypeContinuation carries the next part of the body of the request or
// response of the same seq whose previous frame had FlagMore set. Its
// payload is body bytes only (mlen and metalen are 0); it is sent only to a
// peer that announced FeatureChunks.
const TypeContinuation Type = 8

// MetaFeatures is the metadata key of a hello: a ping (seq 0) whose
// metadata lists, comma-separated, the features its sender understands.
// A peer that understands hellos answers with a pong carrying its own list;
// an older peer skips a control frame's payload and answers an empty pong.
const MetaFeatures = ":features"

// Features a hello may list.
const (
	FeatureS2     = "s2"     // accepts bodies with CompressS2
	FeatureChunks = "chunks" // accepts FlagMore and continuation frames
)

// HelloFeatures is the feature list this implementation announces.
const HelloFeatures = FeatureS2 + "," + FeatureChunks

// MetaConnCalls is the metadata key with which a server's hello answer
// says how many calls it runs at once on one connection (decimal): a
// client that spreads its calls over several connections puts no more
// than that on one, since the server reads no further request from a
// connection at its limit until one of its calls ends.
const MetaConnCalls = ":conncalls"

// AppendHello appends a hello frame of type t (TypePing or TypePong) for
// seq listing features and, when connCalls > 0, the sender's limit of
// calls per connection (MetaConnCalls; a server's answer).
func AppendHello(dst []byte, t Type, seq uint64, features string, connCalls int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	dst, _ = AppendMeta(dst, MetaFeatures, []byte(features))
	if connCalls > 0 {
		dst, _ = AppendMeta(dst, MetaConnCalls, strconv.AppendInt(nil, int64(connCalls), 10))
	}
	PutHeader(dst[start:], &Header{Type: t, Seq: seq, MetaLen: uint32(len(dst) - start - HeaderSize)})
	return dst
}

// Hello is what a hello frame's metadata says.
type Hello struct {
	S2, Chunks bool // the features listed
	// ConnCalls is the sender's limit of calls per connection, 0 if it
	// gave none (or a malformed one).
	ConnCalls int
}

// ParseHello returns what the metadata of a hello says (the zero Hello
// when it says nothing or is malformed).
func ParseHello(meta []byte) Hello {
	var h Hello
	_ = ParseMeta(meta, func(k, v []byte) error {
		switch string(k) {
		case MetaFeatures:
			for f := range strings.SplitSeq(string(v), ",") {
				switch strings.TrimSpace(f) {
				case FeatureS2:
					h.S2 = true
				case FeatureChunks:
					h.Chunks = true
				}
			}
		case MetaConnCalls:
			if n, err := strconv.ParseInt(string(v), 10, 32); err == nil && n > 0 {
				h.ConnCalls = int(n)
			}
		}
		return nil
	})
	return h
}

// WriteHello queues a hello frame built by AppendHello the way WriteControl
// queues a control frame: never waiting for long.
func (w *Writer) WriteHello(frame []byte) error {
	_, err := w.send(context.Background(), time.Now().Add(controlBound), frame, false, true)
	return err
}
