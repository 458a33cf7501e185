package wire

import (
	"context"
	"time"
)

// WriteControlStatus is WriteControl for a control frame that carries a
// status byte: a draining frame with StatusIdle.
func (w *Writer) WriteControlStatus(t Type, status Status, seq uint64) error {
	var b [HeaderSize]byte
	PutHeader(b[:], &Header{Type: t, Status: status, Seq: seq})
	_, err := w.send(context.Background(), time.Now().Add(controlBound), b[:], false, true)
	return err
}
