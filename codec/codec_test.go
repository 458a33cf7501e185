package codec

import (
	"errors"
	"reflect"
	"testing"
)

var (
	_ Codec = Msgpack{}
	_ Codec = JSON{}
)

func TestByID(t *testing.T) {
	tests := []struct {
		give     byte
		wantName string
		wantOK   bool
	}{
		{give: 0},
		{give: 1, wantName: "msgpack", wantOK: true},
		{give: 2, wantName: "json", wantOK: true},
		{give: 3},
		{give: 255},
	}
	for _, tt := range tests {
		c, ok := ByID(tt.give)
		if ok != tt.wantOK {
			t.Fatalf("ByID(%d) ok = %v, want %v", tt.give, ok, tt.wantOK)
		}
		if !ok {
			if c != nil {
				t.Errorf("ByID(%d) = %v, want nil", tt.give, c)
			}
			continue
		}
		if c.Name() != tt.wantName || c.ID() != tt.give {
			t.Errorf("ByID(%d) = %s (id %d), want %s (id %d)", tt.give, c.Name(), c.ID(), tt.wantName, tt.give)
		}
	}
}

type inner struct {
	Name string
	Tags []string
}

type outer struct {
	ID      int64
	Score   float64
	OK      bool
	Inner   inner
	Ptr     *inner
	NilPtr  *inner
	Map     map[string]int
	Bytes   []byte
	Nested  [][]int32
	Renamed string `msgpack:"r" json:"r"`
}

// roundTripTests are values that every codec must decode back to an equal
// value of the same type.
func roundTripTests() []struct {
	name string
	give any
} {
	return []struct {
		name string
		give any
	}{
		{"int", 42},
		{"negative int64", int64(-1 << 40)},
		{"uint64", uint64(1 << 63)},
		{"float64", 3.25},
		{"bool", true},
		{"string", "héllo"},
		{"empty string", ""},
		{"long string", string(make([]byte, 70000))},
		{"slice", []string{"a", "b", "c"}},
		{"nil slice", []int(nil)},
		{"map", map[string]int{"a": 1, "b": 2}},
		{"nil map", map[string]string(nil)},
		{"bytes", []byte{0, 1, 2, 255}},
		{"struct", outer{
			ID: 7, Score: 0.5, OK: true,
			Inner:   inner{Name: "in", Tags: []string{"x"}},
			Ptr:     &inner{Name: "p"},
			Map:     map[string]int{"k": -3},
			Bytes:   []byte("raw"),
			Nested:  [][]int32{{1, 2}, {3}},
			Renamed: "tagged",
		}},
		{"pointer to struct", &inner{Name: "ptr", Tags: []string{"a", "b"}}},
		{"nil pointer", (*inner)(nil)},
		{"benchmark message", newBenchmarkMessage()},
	}
}

func testRoundTrip(t *testing.T, c Codec) {
	for _, tt := range roundTripTests() {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("hdr")
			data, err := c.AppendMarshal(prefix, tt.give)
			if err != nil {
				t.Fatalf("AppendMarshal(%v) error = %v", tt.give, err)
			}
			if string(data[:3]) != "hdr" {
				t.Fatalf("AppendMarshal overwrote dst: got prefix %q, want %q", data[:3], "hdr")
			}
			got := reflect.New(reflect.TypeOf(tt.give))
			if err := c.Unmarshal(data[3:], got.Interface()); err != nil {
				t.Fatalf("Unmarshal(% x) error = %v", data[3:], err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tt.give) {
				t.Errorf("Unmarshal(AppendMarshal(v)) = %#v, want %#v", got.Elem().Interface(), tt.give)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) { testRoundTrip(t, JSON{}) }

func TestJSONUnmarshalError(t *testing.T) {
	tests := []struct {
		name          string
		give          string
		target        any
		wantMalformed bool
	}{
		{"syntax", `{"a":`, new(map[string]int), true},
		{"type", `"x"`, new(int), true},
		{"trailing", `1 2`, new(int), true},
		{"non-pointer", `1`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := JSON{}.Unmarshal([]byte(tt.give), tt.target)
			if err == nil {
				t.Fatalf("Unmarshal(%q) error = nil, want an error", tt.give)
			}
			if got := errors.Is(err, ErrMalformed); got != tt.wantMalformed {
				t.Errorf("Unmarshal(%q) error = %v; errors.Is(err, ErrMalformed) = %v, want %v", tt.give, err, got, tt.wantMalformed)
			}
		})
	}
}

func TestMarshalError(t *testing.T) {
	for _, c := range []Codec{Msgpack{}, JSON{}} {
		dst := []byte("keep")
		got, err := c.AppendMarshal(dst, make(chan int))
		if err == nil {
			t.Errorf("%s AppendMarshal(chan) error = nil, want an error", c.Name())
		}
		if string(got) != "keep" {
			t.Errorf("%s AppendMarshal(chan) = %q, want dst unchanged %q", c.Name(), got, "keep")
		}
	}
}

func BenchmarkJSON(b *testing.B) {
	msg := newBenchmarkMessage()
	data, err := JSON{}.AppendMarshal(nil, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			if _, err := (JSON{}).AppendMarshal(buf[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m benchmarkMessage
			if err := (JSON{}).Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
