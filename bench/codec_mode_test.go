package main

import (
	"bytes"
	"flag"
	"io"
	"testing"
)

// TestCodecFlag: -rawcodec alone means v5, =seedrpc picks seedrpc's codec,
// anything else is refused.
func TestCodecFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want codecMode
	}{
		{nil, codecNone},
		{[]string{"-rawcodec"}, codecV5},
		{[]string{"-rawcodec=v5"}, codecV5},
		{[]string{"-rawcodec=seedrpc"}, codecSeedrpc},
		{[]string{"-rawcodec=false"}, codecNone},
	} {
		var m codecMode
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		fs.Var(codecFlag{&m}, "rawcodec", "")
		if err := fs.Parse(tt.args); err != nil || m != tt.want {
			t.Errorf("Parse(%q): mode %q, error %v; want %q, nil", tt.args, m, err, tt.want)
		}
	}
	var m codecMode
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(codecFlag{&m}, "rawcodec", "")
	if err := fs.Parse([]string{"-rawcodec=gob"}); err == nil {
		t.Errorf("Parse(-rawcodec=gob) = nil error, want one")
	}
}

// TestStructCodecModes: both codecs decode what the other encodes (the
// raw systems' client and server always use the same one, but a mix-up
// must not go unseen), and seedrpc's produces the message's 896 bytes.
func TestStructCodecModes(t *testing.T) {
	v5, sr := newStructCodec(codecV5), newStructCodec(codecSeedrpc)
	if v5.seedrpc || !sr.seedrpc {
		t.Fatalf("newStructCodec: v5 uses seedrpc's codec %v, seedrpc %v; want false, true", v5.seedrpc, sr.seedrpc)
	}
	a, err := v5.appendEncode(nil, newMessage())
	if err != nil {
		t.Fatal(err)
	}
	b, err := sr.appendEncode(nil, newMessage())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("seedrpc's encoding (%d bytes) differs from v5's (%d bytes)", len(b), len(a))
	}
	for _, c := range []struct {
		name string
		dec  *structCodec
		in   []byte
	}{{"v5 decodes seedrpc's", v5, b}, {"seedrpc decodes v5's", sr, a}} {
		var m BenchmarkMessage
		if err := c.dec.decode(c.in, &m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := checkReply(&m); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestChildArgsCarryCodecMode: the child parses the parent's -rawcodec mode
// from the arguments it is started with (both codecs encode the message
// alike, so a run would not show a child on the wrong one).
func TestChildArgsCarryCodecMode(t *testing.T) {
	for _, want := range []codecMode{codecNone, codecV5, codecSeedrpc} {
		args := childArgs("rawtcp", want)
		var got codecMode
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		serve := fs.String("serve", "", "")
		fs.String("addr", "", "")
		fs.Var(codecFlag{&got}, "rawcodec", "")
		if err := fs.Parse(args); err != nil || got != want || *serve != "rawtcp" {
			t.Errorf("childArgs(rawtcp, %q) = %q: parsed mode %q, serve %q, error %v", want, args, got, *serve, err)
		}
	}
}
