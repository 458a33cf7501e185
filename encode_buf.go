package rpc

// encodeSlack is the room reserved beyond a body's expected size for the
// encoding's own bytes (a msgpack bin header, request metadata).
const encodeSlack = 1 << 10

// getEncodeBuf returns a pooled buffer of length n in which a frame whose
// body encodes v is to be built: for a large byte slice or string, with the
// capacity the encoded body will need, so that encoding it neither grows
// the buffer (a fresh allocation and a copy per doubling) nor leaves a
// buffer of a capacity bigPool does not take back. Other values get a
// buffer of length n that encoding grows as it goes.
func getEncodeBuf(n int, v any) *[]byte {
	var size int
	switch a := v.(type) {
	case []byte:
		size = len(a)
	case *[]byte:
		if a != nil {
			size = len(*a)
		}
	case string:
		size = len(a)
	case *string:
		if a != nil {
			size = len(*a)
		}
	}
	if n+size+encodeSlack <= maxPooledBuf {
		return getBuf(n)
	}
	bp := getBuf(n + size + encodeSlack)
	*bp = (*bp)[:n]
	return bp
}
