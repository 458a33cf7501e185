package main

import (
	"fmt"

	"github.com/seedrpc/rpc/codec"
)

// codecMode is what the raw systems do with the message (-rawcodec):
// echo the pre-encoded bytes (codecNone), or decode and encode it on both
// sides with msgpack v5, the library the peer systems use (codecV5, what
// -rawcodec alone means), or with seedrpc's own msgpack codec
// (codecSeedrpc). The last is raw TCP doing exactly seedrpc's decoding, so
// that what the framework adds beyond it shows (docs/BENCHMARKS.md, issue
// 15, seventh step).
type codecMode string

const (
	codecNone    codecMode = ""
	codecV5      codecMode = "v5"
	codecSeedrpc codecMode = "seedrpc"
)

// on reports whether the raw systems decode and encode the message.
func (m codecMode) on() bool { return m != codecNone }

// String is the flag's value as given on the command line ("false" when
// off, as a boolean flag prints).
func (m codecMode) String() string {
	if m == codecNone {
		return "false"
	}
	return string(m)
}

// codecFlag is -rawcodec: a boolean flag (-rawcodec means v5) that also
// takes a value (-rawcodec=seedrpc).
type codecFlag struct{ m *codecMode }

func (f codecFlag) IsBoolFlag() bool { return true }

func (f codecFlag) String() string {
	if f.m == nil {
		return "false"
	}
	return f.m.String()
}

func (f codecFlag) Set(s string) error {
	switch s {
	case "false", "":
		*f.m = codecNone
	case "true", "v5":
		*f.m = codecV5
	case "seedrpc":
		*f.m = codecSeedrpc
	default:
		return fmt.Errorf("want false, true, v5 or seedrpc, got %q", s)
	}
	return nil
}

// seedrpcMsgpack is seedrpc's codec, as its client and server use it.
var seedrpcMsgpack codec.Msgpack
