//go:build goexperiment.jsonv2

package codec

// jsonFastEnabled is off under GOEXPERIMENT=jsonv2: encoding/json is then
// built on encoding/json/v2, whose corner cases the fast path does not
// follow, so every value goes to encoding/json.
const jsonFastEnabled = false
