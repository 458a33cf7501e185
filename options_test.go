package rpc

import (
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

func TestServerOptions(t *testing.T) {
	def := defaultServerOptions()
	tests := []struct {
		name string
		give []ServerOption
		want func(o serverOptions) bool
	}{
		{"defaults", nil, func(o serverOptions) bool {
			return o.maxCalls == 10000 && o.connCalls == 256 && o.drainGrace == drainGrace && o.maxFrame == def.maxFrame
		}},
		{"max calls", []ServerOption{WithMaxCalls(10, 2)}, func(o serverOptions) bool { return o.maxCalls == 10 && o.connCalls == 2 }},
		{"max calls, zero keeps the defaults", []ServerOption{WithMaxCalls(0, -1)}, func(o serverOptions) bool {
			return o.maxCalls == def.maxCalls && o.connCalls == def.connCalls
		}},
		{"instance", []ServerOption{WithInstance(registry.Instance{Service: "X", Addr: "10.0.0.5:9000", Weight: 3})}, func(o serverOptions) bool {
			return o.instance.Service == "" && o.instance.Addr == "10.0.0.5:9000" && o.instance.Weight == 3
		}},
		{"frame size, zero keeps the default", []ServerOption{WithMaxFrameSize(0)}, func(o serverOptions) bool { return o.maxFrame == def.maxFrame }},
		{"nil option", []ServerOption{nil}, func(o serverOptions) bool { return o.maxCalls == def.maxCalls }},
	}
	for _, tt := range tests {
		if got := NewServer(tt.give...).opts; !tt.want(got) {
			t.Errorf("%s: NewServer options = %+v", tt.name, got)
		}
	}
}

func TestWithInstanceCopiesMeta(t *testing.T) {
	meta := map[string]string{"zone": "a"}
	srv := NewServer(WithInstance(registry.Instance{Meta: meta}))
	meta["zone"] = "b"
	if got := srv.opts.instance.Meta["zone"]; got != "a" {
		t.Errorf("instance meta after the caller changed its map = %q, want a", got)
	}
}

func TestClientOptions(t *testing.T) {
	def := defaultClientOptions()
	tests := []struct {
		name string
		give []ClientOption
		want func(o clientOptions) bool
	}{
		{"defaults", nil, func(o clientOptions) bool {
			return o.poolSize == 4 && o.keepalive == 5*time.Second && o.ejectAfter == 5 && o.ejectFor == time.Second && o.call.timeout == 0
		}},
		{"keepalive", []ClientOption{WithKeepalive(time.Second)}, func(o clientOptions) bool { return o.keepalive == time.Second }},
		{"keepalive, zero keeps the default", []ClientOption{WithKeepalive(0)}, func(o clientOptions) bool { return o.keepalive == def.keepalive }},
		{"ejection off", []ClientOption{WithEjection(0, 0)}, func(o clientOptions) bool { return o.ejectAfter == 0 && o.ejectFor == def.ejectFor }},
		{"call defaults", []ClientOption{WithTimeout(time.Second), WithFilter("zone", "a"), WithRetries(2)}, func(o clientOptions) bool {
			return o.call.timeout == time.Second && o.call.filter["zone"] == "a" && o.call.retries == 2
		}},
	}
	for _, tt := range tests {
		c, err := newClient("tcp", "", tt.give)
		if err != nil {
			t.Fatalf("%s: newClient() = %v", tt.name, err)
		}
		if !tt.want(c.opts) {
			t.Errorf("%s: client options = %+v", tt.name, c.opts)
		}
		c.Close()
	}
	if _, err := newClient("tcp", "", []ClientOption{WithTimeout(-time.Second)}); err == nil {
		t.Error("newClient(WithTimeout(-1s)) error = nil, want an error")
	}
}

// TestWithFilterDoesNotShareMaps: a per-call filter never changes the
// client's default filter, which every call starts from.
func TestWithFilterDoesNotShareMaps(t *testing.T) {
	c, err := newClient("tcp", "", []ClientOption{WithFilter("version", "v1")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := c.newCall("Calc.Add", nil, nil, nil, []CallOption{WithFilter("zone", "a")})
	if got := call.st.opts.filter; got["version"] != "v1" || got["zone"] != "a" {
		t.Errorf("call filter = %v, want version=v1 and zone=a", got)
	}
	if _, ok := c.opts.call.filter["zone"]; ok {
		t.Errorf("the client's default filter gained a call's key: %v", c.opts.call.filter)
	}
}
