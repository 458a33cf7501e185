package wire

import "io"

// NewWriter returns a Writer that writes to w, with no time bounds (tests
// only: the library always writes to connections, see NewConnWriter).
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }
