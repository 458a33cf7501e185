//go:build !goexperiment.jsonv2

package codec

// jsonFastEnabled turns the JSON fast path on: it follows encoding/json's
// own implementation, which this build uses.
const jsonFastEnabled = true
