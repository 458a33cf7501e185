package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/seedrpc/rpc/internal/wire"
)

// Errors of governance: an interceptor (or a handler) returns one of them,
// possibly wrapped with the reason, to refuse a call. The caller receives
// the sentinel alone, matched with errors.Is; the reason never crosses the
// wire (the server logs it at debug level).
var (
	// ErrUnauthenticated is returned by a call whose credentials were
	// missing or invalid (see the middleware package's token and mTLS
	// checks).
	ErrUnauthenticated = errors.New("rpc: unauthenticated")
	// ErrPermissionDenied is returned by a call the caller may not make:
	// its identity, address or method is not allowed.
	ErrPermissionDenied = errors.New("rpc: permission denied")
)

// Error is a coded application error. A handler (or a server interceptor)
// that returns one, or an error wrapping one, gives its caller an error
// that matches errors.As(err, &e) with the same Code; Message is the
// handler's error text. Any other handler error arrives as ServerError.
type Error struct {
	Code    int    // application-defined; 0 is a valid code
	Message string // human-readable, sent as is
}

// Error returns the message, so that the text a caller sees is the same as
// for a ServerError; the code is in Code.
func (e *Error) Error() string {
	if e.Message == "" {
		return "rpc: error code " + strconv.Itoa(e.Code)
	}
	return e.Message
}

// Errorf returns an *Error with code and a message formatted as by
// fmt.Sprintf.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorStatus is the response status of a call that failed with err. ran
// says whether the method itself was called: a refusal before it
// (ErrOverloaded, ErrBadRequest from an interceptor or from decoding the
// args) tells the client the call did not run.
func errorStatus(ctx *callContext, err error, ran bool) wire.Status {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return wire.StatusUnauthenticated
	case errors.Is(err, ErrPermissionDenied):
		return wire.StatusPermissionDenied
	case !ran && errors.Is(err, ErrOverloaded):
		return wire.StatusOverloaded
	case !ran && errors.Is(err, ErrBadRequest):
		return wire.StatusBadRequest
	case ctx.hasDeadline && errors.Is(err, context.DeadlineExceeded):
		return wire.StatusTimeout
	}
	return wire.StatusServerError
}

// errorMessage is the body of an error response: the fixed text of a
// governance refusal, the message of a coded error, or err's text. code is
// set for a coded error (status 1).
func errorMessage(status wire.Status, err error) (msg string, code *Error) {
	switch status {
	case wire.StatusUnauthenticated:
		return ErrUnauthenticated.Error(), nil
	case wire.StatusPermissionDenied:
		return ErrPermissionDenied.Error(), nil
	case wire.StatusServerError:
		var e *Error
		if errors.As(err, &e) && e != nil {
			if err == error(e) {
				return e.Message, e
			}
			return err.Error(), e // wrapped: the whole text, as grpc does
		}
	}
	return err.Error(), nil
}

// codedError is the caller's error for a status-1 response that carried
// a :code.
func codedError(code int64, msg string) error {
	return &Error{Code: int(code), Message: msg}
}
