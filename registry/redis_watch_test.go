package registry

import (
	"slices"
	"testing"
	"time"
)

// TestWatchHandle drives a watch's message handling without Redis: which
// messages are applied, ignored, or make it read the service in full.
func TestWatchHandle(t *testing.T) {
	newWatch := func() *redisWatch {
		w := &redisWatch{r: &Redis{opts: newOptions([]Option{WithTTL(10 * time.Second)})}, service: "Calc"}
		w.insts = []Instance{{Service: "Calc", Addr: "a:1"}, {Service: "Calc", Addr: "c:1"}}
		w.version, w.at = 100, 5000
		return w
	}
	tests := []struct {
		name      string
		give      string
		wantRead  bool
		wantAddrs []string
		wantV     int64
	}{
		{"add", `{"v":101,"t":5001,"x":9000,"c":[["+","b:1",15001,"{\"w\":2}"]]}`, false, []string{"a:1", "b:1", "c:1"}, 101},
		{"update", `{"v":101,"t":5001,"x":9000,"c":[["~","c:1",15001,"{\"w\":5}"]]}`, false, []string{"a:1", "c:1"}, 101},
		{"remove", `{"v":101,"t":5001,"x":9000,"c":[["-","a:1"]]}`, false, []string{"c:1"}, 101},
		{"remove unknown", `{"v":101,"t":5001,"x":9000,"c":[["-","z:1"]]}`, false, []string{"a:1", "c:1"}, 101},
		{"several", `{"v":101,"t":5001,"x":9000,"c":[["-","a:1"],["-","c:1"],["+","d:1",15001,""]]}`, false, []string{"d:1"}, 101},
		{"seen already", `{"v":100,"t":4990,"x":9000,"c":[["+","b:1",15001,"{}"]]}`, false, []string{"a:1", "c:1"}, 100},
		{"older", `{"v":99,"t":4980,"x":9000,"c":[["-","a:1"]]}`, false, []string{"a:1", "c:1"}, 100},
		{"gap", `{"v":102,"t":5001,"x":9000,"c":[["+","b:1",15001,"{}"]]}`, true, []string{"a:1", "c:1"}, 100},
		{"counter restarted", `{"v":7,"t":5002,"x":9000,"c":[["+","b:1",15001,"{}"]]}`, true, []string{"a:1", "c:1"}, 100},
		{"tick confirms", `{"v":100,"t":5003,"x":9000}`, false, []string{"a:1", "c:1"}, 100},
		{"tick ahead", `{"v":101,"t":5003,"x":9000}`, true, []string{"a:1", "c:1"}, 100},
		{"stale tick", `{"v":99,"t":4999,"x":9000}`, false, []string{"a:1", "c:1"}, 100},
		{"older registry's message", `a:1`, true, []string{"a:1", "c:1"}, 100},
		{"bad change", `{"v":101,"t":5001,"x":9000,"c":[["?","b:1"]]}`, true, nil, 0},
	}
	for _, tt := range tests {
		w := newWatch()
		got := w.handle(inbound{payload: tt.give, at: time.Now()}) != ""
		if got != tt.wantRead {
			t.Errorf("%s: handle(%s) read = %v, want %v", tt.name, tt.give, got, tt.wantRead)
		}
		if tt.wantAddrs == nil {
			continue
		}
		if !slices.Equal(addrs(w.insts), tt.wantAddrs) || w.version != tt.wantV {
			t.Errorf("%s: after handle(%s) list = %v at version %d, want %v at %d", tt.name, tt.give, addrs(w.insts), w.version, tt.wantAddrs, tt.wantV)
		}
	}

	// Data travels with the change.
	w := newWatch()
	w.handle(inbound{payload: `{"v":101,"t":5001,"x":9000,"c":[["~","c:1",15001,"{\"w\":5,\"m\":{\"zone\":\"b\"}}"]]}`, at: time.Now()})
	if in := w.insts[1]; in.Weight != 5 || in.Meta["zone"] != "b" {
		t.Errorf("updated instance = %+v, want Weight 5, zone b", in)
	}
	// An empty service (no version) reads on its first change: it cannot tell
	// which epoch the change belongs to.
	w = newWatch()
	w.insts, w.version = nil, 0
	if w.handle(inbound{payload: `{"v":5001,"t":5001,"x":9000,"c":[["+","b:1",15001,"{}"]]}`, at: time.Now()}) == "" {
		t.Error("first change of an unversioned service applied, want a full read")
	}
	// A tick schedules the next expiry check from Redis's clock.
	w = newWatch()
	recv := time.Now()
	w.handle(inbound{payload: `{"v":100,"t":5000,"x":8000}`, at: recv})
	if d := w.checkAt.Sub(recv); d < 3*time.Second || d > 3*time.Second+600*time.Millisecond {
		t.Errorf("check scheduled %v after the tick, want 3s plus up to the spread", d)
	}
}
