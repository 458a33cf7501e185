package middleware

import (
	"context"
	"errors"
	"log/slog"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// Logging returns an interceptor that logs every call once it has ended:
// its method, peer, duration and status, plus the error and, for a coded
// error, its code. Successful calls are logged at Info, failed ones at
// Warn, panics at Error (the panic then goes on to the server, which
// answers it as usual). A nil l logs to slog.Default(). Install it
// outermost to see the refusals of the other interceptors.
func Logging(l *slog.Logger) rpc.ServerInterceptor {
	if l == nil {
		l = slog.Default()
	}
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (reply any, err error) {
		start := time.Now()
		panicked := true
		defer func() {
			attrs := []slog.Attr{
				slog.String("method", req.ServiceMethod),
				slog.String("peer", addrString(req)),
				slog.Duration("duration", time.Since(start)),
			}
			if req.Oneway {
				attrs = append(attrs, slog.Bool("oneway", true))
			}
			level := slog.LevelInfo
			switch {
			case panicked:
				level = slog.LevelError
				attrs = append(attrs, slog.String("status", "Panic"))
			case err != nil:
				level = slog.LevelWarn
				attrs = append(attrs, slog.String("status", Status(err)))
				var e *rpc.Error
				if errors.As(err, &e) {
					attrs = append(attrs, slog.Int("code", e.Code))
				}
				attrs = append(attrs, slog.String("err", err.Error()))
			default:
				attrs = append(attrs, slog.String("status", "OK"))
			}
			l.LogAttrs(ctx, level, "rpc call", attrs...)
		}()
		reply, err = next(ctx, req)
		panicked = false
		return reply, err
	}
}

// Status names the outcome of a call that ended with err, for logs and
// metrics: "OK" for nil, else one of "Unauthenticated", "PermissionDenied",
// "Overloaded", "BadRequest", "Timeout", "Canceled", "Internal",
// "ShuttingDown", "NoService", "NoMethod", "Error" (an *rpc.Error) and
// "ServerError" (anything else). It works on the errors of either side.
func Status(err error) string {
	var e *rpc.Error
	switch {
	case err == nil:
		return "OK"
	case errors.Is(err, rpc.ErrUnauthenticated):
		return "Unauthenticated"
	case errors.Is(err, rpc.ErrPermissionDenied):
		return "PermissionDenied"
	case errors.Is(err, rpc.ErrOverloaded):
		return "Overloaded"
	case errors.Is(err, rpc.ErrBadRequest):
		return "BadRequest"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, rpc.ErrTimeout):
		return "Timeout"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	case errors.Is(err, rpc.ErrInternal):
		return "Internal"
	case errors.Is(err, rpc.ErrServerShuttingDown):
		return "ShuttingDown"
	case errors.Is(err, rpc.ErrNoService):
		return "NoService"
	case errors.Is(err, rpc.ErrNoMethod):
		return "NoMethod"
	case errors.As(err, &e):
		return "Error"
	}
	return "ServerError"
}

func addrString(req *rpc.Request) string {
	if req.Peer == nil {
		return ""
	}
	return req.Peer.String()
}
