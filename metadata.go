package rpc

import (
	"context"
	"strings"

	"github.com/seedrpc/rpc/internal/wire"
)

// respHeaderKey is the ctx key under which a handler's callContext answers
// SetHeader.
type respHeaderKey struct{}

// SetHeader adds a response header (metadata key and value) to the call
// whose handler or server interceptor holds ctx; the caller reads it with
// WithResponseHeader or Call.ResponseHeader. A key set twice keeps the last
// value. Headers go out with the response, error responses included; one
// set after the response was written, or with a ctx that is not a call's,
// is dropped. So are invalid ones: an empty key, a key over 255 bytes or
// starting with ':' (reserved for the protocol), a value over 65535 bytes.
func SetHeader(ctx context.Context, key, val string) {
	if len(key) == 0 || len(key) > 255 || strings.HasPrefix(key, ":") || len(val) > wire.MaxMetaValueLen {
		return
	}
	c, _ := ctx.Value(respHeaderKey{}).(*callContext)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.respSent {
		return
	}
	if c.resp == nil {
		c.resp = new([]metaPair)
	}
	hdrs := *c.resp
	for i := range hdrs {
		if hdrs[i].key == key {
			hdrs[i].val = val
			return
		}
	}
	*c.resp = append(hdrs, metaPair{key, val})
}

// takeResponseHeader returns the response headers and drops any set later.
func (c *callContext) takeResponseHeader() []metaPair {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.respSent = true
	if c.resp == nil {
		return nil
	}
	return *c.resp
}

// appendResponseMeta appends the metadata of a response: the headers, and
// the code of a coded error (nil: none).
func appendResponseMeta(dst []byte, hdr []metaPair, code *Error) []byte {
	for _, kv := range hdr {
		// SetHeader let only valid entries in: this cannot fail.
		dst, _ = wire.AppendMeta(dst, kv.key, []byte(kv.val))
	}
	if code != nil {
		dst = wire.AppendCode(dst, int64(code.Code))
	}
	return dst
}

// WithResponseHeader makes a synchronous call (Call, CallContext) store the
// response headers the server set with SetHeader in *h when it returns:
// nil if there were none. Other call styles read Call.ResponseHeader. Give
// it per call, not as a client default, since every call would write *h.
func WithResponseHeader(h *map[string]string) CallOption {
	return callOption(func(o *callOptions) { o.respHeader = h })
}

// parseResponseMeta reads a response's metadata: the headers (nil if none)
// and the code of a coded error.
func parseResponseMeta(meta []byte) (hdr map[string]string, code int64, coded bool, err error) {
	err = wire.ParseMeta(meta, func(k, v []byte) error {
		if string(k) == wire.MetaCode {
			c, err := wire.ParseCode(v)
			code, coded = c, err == nil
			return err
		}
		if k[0] == ':' {
			return nil // reserved: unknown to this version
		}
		if hdr == nil {
			hdr = make(map[string]string)
		}
		hdr[string(k)] = string(v)
		return nil
	})
	return hdr, code, coded, err
}
