package prometheus

import (
	"errors"
	"net"

	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/middleware"
)

// codeOK is the code of a call that succeeded.
const codeOK = "OK"

// serverCode names the outcome of a server call (see the package doc).
func serverCode(err error) string {
	if err == nil {
		return codeOK // without Status's allocation
	}
	return middleware.Status(err)
}

// clientCode names the outcome of a client call: the server's verdict as
// on the server side, or what kept the call from getting one.
func clientCode(err error) string {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, rpc.ErrNoInstances):
		return "NoInstances"
	case errors.Is(err, rpc.ErrShutdown):
		return "Unavailable"
	}
	code := middleware.Status(err)
	if code != "ServerError" {
		return code
	}
	var se rpc.ServerError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return code
	case errors.As(err, &ne):
		return "Unavailable"
	}
	return "Unknown"
}
