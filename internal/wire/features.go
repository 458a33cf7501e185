package wire

import (
	"context"
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

// AppendHello appends a hello frame of type t (TypePing or TypePong) for
// seq listing features.
func AppendHello(dst []byte, t Type, seq uint64, features string) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	dst, _ = AppendMeta(dst, MetaFeatures, []byte(features))
	PutHeader(dst[start:], &Header{Type: t, Seq: seq, MetaLen: uint32(len(dst) - start - HeaderSize)})
	return dst
}

// ParseFeatures returns the features listed by the metadata of a hello
// (empty when it lists none or is malformed).
func ParseFeatures(meta []byte) (s2, chunks bool) {
	_ = ParseMeta(meta, func(k, v []byte) error {
		if string(k) != MetaFeatures {
			return nil
		}
		for f := range strings.SplitSeq(string(v), ",") {
			switch strings.TrimSpace(f) {
			case FeatureS2:
				s2 = true
			case FeatureChunks:
				chunks = true
			}
		}
		return nil
	})
	return s2, chunks
}

// WriteHello queues a hello frame built by AppendHello the way WriteControl
// queues a control frame: never waiting for long.
func (w *Writer) WriteHello(frame []byte) error {
	_, err := w.send(context.Background(), time.Now().Add(controlBound), frame, false, true)
	return err
}
