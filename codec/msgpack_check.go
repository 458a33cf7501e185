package codec

import (
	"encoding/binary"
	"fmt"
)

// maxMsgpackDepth is how deeply arrays and maps may nest in a Msgpack body.
const maxMsgpackDepth = 64

// variable marks the codes in msgpackSkip whose size is not fixed.
const variable = 0xff

// msgpackSkip holds, for every MessagePack code, how many bytes follow it
// when that number is fixed, and variable otherwise (containers, str8-32,
// bin, ext8-32, and the never-used 0xc1).
const msgpackSkip = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x00 positive fixint
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x10
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x20
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x30
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x40
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x50
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x60
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0x70
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + // 0x80 fixmap
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + // 0x90 fixarray
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" + // 0xa0 fixstr
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f" + // 0xb0 fixstr
	// nil, (never used), false, true, bin8-32, ext8-32, float32/64, uint8-64
	"\x00\xff\x00\x00\xff\xff\xff\xff\xff\xff\x04\x08\x01\x02\x04\x08" + // 0xc0
	// int8-64, fixext1-16 (type byte + data), str8-32, array16/32, map16/32
	"\x01\x02\x04\x08\x02\x03\x05\x09\x11\xff\xff\xff\xff\xff\xff\xff" + // 0xd0
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 0xe0 negative fixint
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" //   0xf0

// checkMsgpack returns nil if b holds exactly one well-formed MessagePack
// value that is safe to hand to the decoder, and an error wrapping
// ErrMalformed that says what and at which offset otherwise. It walks b
// once, iteratively and without allocating (on success), and rejects:
//
//   - a string, binary or extension whose declared length does not fit in
//     the bytes that remain;
//   - an array or map that declares more elements than could still follow:
//     every value takes at least one byte, so the values still owed by all
//     open containers may never exceed the bytes left (a map entry owes two);
//   - containers nested more than maxMsgpackDepth deep;
//   - the never-used code 0xc1, truncated values and trailing bytes.
//
// The decoder preallocates from declared lengths, so after this check what
// it allocates is bounded by len(b) times the size of the target elements.
//
// Extension payloads are opaque bytes, except for the one place msgpack
// reads through them: when it decodes a map it skips an extension header in
// front of it and reads the map from the payload, so a map16/map32 header at
// the start of a payload must fit the rest of the body too. Extension types
// registered with msgpack.RegisterExt whose decoders decode MessagePack from
// the payload are outside this guarantee.
func checkMsgpack(b []byte) error {
	// closeAt[i] is what owed was just after the i-th open container's own
	// code was read. Once owed drops below it, the value being read lies
	// outside that container, which is then closed (popped).
	var closeAt [maxMsgpackDepth]int
	depth := 0 // open containers
	owed := 1  // values still owed in total, the top-level one included
	off := 0
	for owed > 0 {
		if off >= len(b) {
			if off == 0 {
				return malformed(0, "empty body")
			}
			return malformed(off, "truncated: %d more values expected", owed)
		}
		start := off
		c := b[off]
		off++
		owed--
		n := 0 // elements of an array, or 2*entries of a map
		switch {
		case c-0xa0 < 0x20: // fixstr: map keys, the commonest code
			off += int(c & 0x1f)
		case c == 0xd9 && off < len(b): // str8
			off += 1 + int(b[off])
		case msgpackSkip[c] != variable: // fixint, nil, bool, numbers, fixext
			off += int(msgpackSkip[c])
		case c <= 0x8f: // fixmap
			n = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			n = int(c & 0x0f)
		default:
			switch c {
			case 0xd9, 0xda, 0xdb: // str8/16/32
				l, err := readLen(b, start, 1<<(c-0xd9))
				if err != nil {
					return err
				}
				off += 1<<(c-0xd9) + l
			case 0xc4, 0xc5, 0xc6: // bin8/16/32
				l, err := readLen(b, start, 1<<(c-0xc4))
				if err != nil {
					return err
				}
				off += 1<<(c-0xc4) + l
			case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type byte, data
				hdr := 1 << (c - 0xc7)
				l, err := readLen(b, start, hdr)
				if err != nil {
					return err
				}
				off += hdr
				if err := checkExtMap(b, off, l); err != nil {
					return err
				}
				off += 1 + l
			case 0xdc, 0xdd: // array16/32
				hdr := 2 << (c - 0xdc)
				l, err := readLen(b, start, hdr)
				if err != nil {
					return err
				}
				off += hdr
				n = l
			case 0xde, 0xdf: // map16/32
				hdr := 2 << (c - 0xde)
				l, err := readLen(b, start, hdr)
				if err != nil {
					return err
				}
				off += hdr
				n = 2 * l
			default:
				return malformed(start, "never-used code 0x%02x", c)
			}
		}
		if off > len(b) {
			return malformed(start, "%s runs %d bytes past the end", describe(c), off-len(b))
		}
		if n == 0 {
			continue
		}
		// Pop the containers that had started all their elements before
		// this one, then open this one.
		for depth > 0 && closeAt[depth-1] > owed {
			depth--
		}
		if depth == maxMsgpackDepth {
			return malformed(start, "nesting deeper than %d", maxMsgpackDepth)
		}
		closeAt[depth] = owed
		depth++
		owed += n
		if owed > len(b)-off {
			return malformed(start, "%s of %d values does not fit: %d values owed, %d bytes left", describe(c), n, owed, len(b)-off)
		}
	}
	if off != len(b) {
		return malformed(off, "%d trailing bytes after the value", len(b)-off)
	}
	return nil
}

// checkExtMap checks an extension payload of l bytes whose type byte is at
// b[off]: msgpack's map decoder skips an extension header and reads a map
// from the payload, with the length declared there.
func checkExtMap(b []byte, off, l int) error {
	p := off + 1 // first payload byte
	if l < 1 || p >= len(b) {
		return nil
	}
	hdr := 0
	switch b[p] {
	case 0xde:
		hdr = 2
	case 0xdf:
		hdr = 4
	default:
		return nil
	}
	m, err := readLen(b, p, hdr)
	if err != nil {
		return nil // truncated: the decoder fails before allocating
	}
	if n := 2 * m; n > len(b)-p-1-hdr {
		return malformed(p, "map in ext of %d values does not fit: %d bytes left", n, len(b)-p-1-hdr)
	}
	return nil
}

// readLen reads the big-endian length of size 1, 2 or 4 that follows the
// code at b[start].
func readLen(b []byte, start, size int) (int, error) {
	p := start + 1
	if len(b)-p < size {
		return 0, malformed(start, "truncated %s header", describe(b[start]))
	}
	switch size {
	case 1:
		return int(b[p]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b[p:])), nil
	default:
		return int(binary.BigEndian.Uint32(b[p:])), nil
	}
}

// describe names the kind of value code c starts, for errors.
func describe(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return "fixint"
	case c <= 0x8f || c == 0xde || c == 0xdf:
		return "map"
	case c <= 0x9f || c == 0xdc || c == 0xdd:
		return "array"
	case c <= 0xbf || c == 0xd9 || c == 0xda || c == 0xdb:
		return "str"
	case c >= 0xc4 && c <= 0xc6:
		return "bin"
	case c >= 0xc7 && c <= 0xc9 || c >= 0xd4 && c <= 0xd8:
		return "ext"
	}
	return "number"
}

// malformed returns an error wrapping ErrMalformed for a problem at offset off.
func malformed(off int, format string, args ...any) error {
	return fmt.Errorf("%w: msgpack: "+format+" at offset %d", append(append([]any{ErrMalformed}, args...), off)...)
}
