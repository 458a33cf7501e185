package schema

import "reflect"

// The reserved service through which a server describes itself (see
// docs/PROTOCOL.md, "Introspection"). Users cannot register a service of
// that name.
const (
	ServiceName    = "_seedrpc"
	DescribeMethod = ServiceName + ".Describe"
)

// DescribeArgs is the args of DescribeMethod: the service to describe, or
// "" for every service (the reserved one left out).
type DescribeArgs struct {
	Service string `msgpack:"service" json:"service"`
}

// Description is the reply of DescribeMethod.
type Description struct {
	Services []Service `msgpack:"services" json:"services"` // sorted by name
}

// Service describes one registered service.
type Service struct {
	Name    string   `msgpack:"name" json:"name"`
	Methods []Method `msgpack:"methods" json:"methods"` // sorted by name
}

// Method describes one callable method: the shapes of its args and its
// reply (the value the reply pointer points to), with their fingerprints.
type Method struct {
	Name             string `msgpack:"name" json:"name"`
	Args             *Shape `msgpack:"args" json:"args"`
	Reply            *Shape `msgpack:"reply" json:"reply"`
	ArgsFingerprint  string `msgpack:"args_fingerprint" json:"args_fingerprint"`
	ReplyFingerprint string `msgpack:"reply_fingerprint" json:"reply_fingerprint"`
}

// NewMethod returns the description of method name whose args have
// type args (a pointer counts as the value it points to: that is what a
// caller sends) and whose reply has type reply.
func NewMethod(name string, args, reply reflect.Type) Method {
	if args != nil && args.Kind() == reflect.Pointer {
		args = args.Elem()
	}
	a, r := Of(args), Of(reply)
	return Method{Name: name, Args: a, Reply: r, ArgsFingerprint: a.Fingerprint(), ReplyFingerprint: r.Fingerprint()}
}
