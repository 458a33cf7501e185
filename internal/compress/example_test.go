package compress_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/seedrpc/rpc/internal/compress"
)

func Example() {
	body := bytes.Repeat([]byte(`{"item":"widget","qty":1}`), 100)
	frame := []byte("hdr:")
	frame, ok := compress.Compress(frame, body)
	fmt.Println("compressed:", ok, len(frame) < len(body))

	out, err := compress.Decompress(nil, frame[len("hdr:"):], 1<<20)
	fmt.Println("restored:", err == nil && bytes.Equal(out, body))

	// A body that would inflate past the limit is refused before it is
	// allocated.
	_, err = compress.Decompress(nil, frame[len("hdr:"):], 1000)
	fmt.Println("too large:", errors.Is(err, compress.ErrTooLarge))
	// Output:
	// compressed: true true
	// restored: true
	// too large: true
}
