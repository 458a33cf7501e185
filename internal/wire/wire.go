// Package wire is seedrpc's frame format: a fixed 24-byte header followed by
// the method name, the metadata and the body. It is internal: the layout is
// documented for other implementations in docs/PROTOCOL.md, not exported as
// Go API.
//
//	 0      2      3      4      5      6        8                16       20       24
//	+------+------+------+------+------+--------+----------------+--------+--------+
//	|magic | ver  | type |codec |status| mlen   |      seq       | metalen| bodylen|
//	|5E ED | 01   |      |      |      | u16 BE |     u64 BE     | u32 BE | u32 BE |
//	+------+------+------+------+------+--------+----------------+--------+--------+
//	| method (mlen bytes) | metadata (metalen bytes) | body (bodylen bytes)          |
//	+-------------------------------------------------------------------------------+
//
// All integers are big-endian. mlen+metalen+bodylen must not exceed the
// receiver's maximum frame size; the check happens on the header alone,
// before anything is allocated.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of the fixed frame header in bytes.
const HeaderSize = 24

// Magic and Version open every frame.
const (
	Magic0  = 0x5E
	Magic1  = 0xED
	Version = 1
)

// DefaultMaxFrameSize is the default limit on mlen+metalen+bodylen (16 MiB).
const DefaultMaxFrameSize = 16 << 20

// MaxMethodLen is the longest "Service.Method" name a frame may carry.
const MaxMethodLen = 1024

// Type is a frame's message type.
type Type uint8

// Frame types.
const (
	TypeRequest  Type = 1 // client -> server, expects a response with the same seq
	TypeResponse Type = 2 // server -> client
	TypeOneway   Type = 3 // client -> server, no response
	TypePing     Type = 4 // either direction; the peer answers with a pong, same seq
	TypePong     Type = 5
	TypeCancel   Type = 6 // client -> server: the caller gave up on request seq
	TypeDraining Type = 7 // server -> client: send no new requests on this connection
)

func (t Type) String() string {
	switch t {
	case TypeRequest:
		return "request"
	case TypeResponse:
		return "response"
	case TypeOneway:
		return "oneway"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeCancel:
		return "cancel"
	case TypeDraining:
		return "draining"
	case TypeContinuation:
		return "continuation"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Status is a response's outcome. Any status but StatusOK carries a UTF-8
// error message as its body instead of an encoded reply.
type Status uint8

// Statuses.
const (
	StatusOK            Status = 0
	StatusServerError   Status = 1 // the handler returned an error
	StatusNoService     Status = 2 // unknown service
	StatusNoMethod      Status = 3 // unknown method
	StatusBadRequest    Status = 4 // undecodable args, bad codec, malformed metadata
	StatusOverloaded    Status = 5 // the server-wide limit of running calls was reached
	StatusTimeout       Status = 6 // the deadline passed before the handler finished
	StatusShuttingDown  Status = 7 // the server is draining and refuses new calls
	StatusInternalError Status = 8 // the handler panicked

	// Governance refusals (issue 10): the body is a fixed text that says
	// no more than the status; the server logs the reason.
	StatusUnauthenticated  Status = 30 // the caller's credentials are missing or invalid
	StatusPermissionDenied Status = 31 // the caller may not make this call
)

// Statuses about limits.
const (
	// StatusTooLarge answers a request over the server's max frame size (the
	// handler did not run) or a call whose reply would exceed it.
	StatusTooLarge Status = 20
	// StatusIdle is not a response status: a draining frame carries it to
	// say that the server closes this idle connection but goes on serving.
	StatusIdle Status = 21
)

// Errors returned by ParseHeader and ParseMeta.
var (
	ErrBadMagic  = errors.New("wire: bad magic")
	ErrVersion   = errors.New("wire: unsupported version")
	ErrBadType   = errors.New("wire: unknown frame type")
	ErrTooLarge  = errors.New("wire: frame too large")
	ErrMalformed = errors.New("wire: malformed frame")
)

// Header is a decoded frame header.
type Header struct {
	Type      Type
	Codec     uint8
	Status    Status
	MethodLen uint16
	Seq       uint64
	MetaLen   uint32
	BodyLen   uint32
}

// PayloadLen is the number of bytes that follow the header.
func (h *Header) PayloadLen() int {
	return int(h.MethodLen) + int(h.MetaLen) + int(h.BodyLen)
}

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h *Header) {
	_ = b[HeaderSize-1]
	b[0], b[1], b[2] = Magic0, Magic1, Version
	b[3] = byte(h.Type)
	b[4] = h.Codec
	b[5] = byte(h.Status)
	binary.BigEndian.PutUint16(b[6:8], h.MethodLen)
	binary.BigEndian.PutUint64(b[8:16], h.Seq)
	binary.BigEndian.PutUint32(b[16:20], h.MetaLen)
	binary.BigEndian.PutUint32(b[20:24], h.BodyLen)
}

// ParseHeader decodes b[:HeaderSize] and checks it against maxFrame (the
// limit on everything after the header). It rejects bad magic, another
// version, unknown types and oversized or inconsistent lengths.
func ParseHeader(b []byte, maxFrame int) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: short header (%d bytes)", ErrMalformed, len(b))
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return h, fmt.Errorf("%w: % x", ErrBadMagic, b[:2])
	}
	if b[2] != Version {
		return h, fmt.Errorf("%w: %d", ErrVersion, b[2])
	}
	h.Type = Type(b[3])
	h.Codec = b[4]
	h.Status = Status(b[5])
	h.MethodLen = binary.BigEndian.Uint16(b[6:8])
	h.Seq = binary.BigEndian.Uint64(b[8:16])
	h.MetaLen = binary.BigEndian.Uint32(b[16:20])
	h.BodyLen = binary.BigEndian.Uint32(b[20:24])
	if h.Type < TypeRequest || h.Type > TypeContinuation {
		return h, fmt.Errorf("%w: %d", ErrBadType, uint8(h.Type))
	}
	if h.MethodLen > MaxMethodLen {
		return h, fmt.Errorf("%w: method name of %d bytes (max %d)", ErrMalformed, h.MethodLen, MaxMethodLen)
	}
	if (h.Type != TypeRequest && h.Type != TypeOneway) && h.MethodLen != 0 {
		return h, fmt.Errorf("%w: %s frame with a method name", ErrMalformed, h.Type)
	}
	if n := uint64(h.MethodLen) + uint64(h.MetaLen) + uint64(h.BodyLen); n > uint64(maxFrame) {
		return h, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, n, maxFrame)
	}
	return h, nil
}

// CheckPrefix reports whether p, the first bytes of a frame (any number of
// them, even fewer than HeaderSize), can open a valid frame: it checks the
// magic and version bytes that p holds. A receiver calls it as soon as a
// few bytes have arrived, so a short garbage write (an 18-byte HTTP/1.0
// request) is rejected at once instead of waiting for a full header.
func CheckPrefix(p []byte) error {
	want := [3]byte{Magic0, Magic1, Version}
	for i := 0; i < len(p) && i < len(want); i++ {
		if p[i] == want[i] {
			continue
		}
		if i < 2 {
			return fmt.Errorf("%w: % x", ErrBadMagic, p[:min(len(p), 2)])
		}
		return fmt.Errorf("%w: %d", ErrVersion, p[2])
	}
	return nil
}
