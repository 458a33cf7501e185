package rpc

import (
	"io"
	"net"
	netrpc "net/rpc"
	"time"
)

// The names below are net/rpc's, with net/rpc's meaning, so that most
// net/rpc programs move to seedrpc by changing the import path. The one
// rename is net/rpc's NewClient(conn), which is NewClientConn(conn) here.
// docs/MIGRATING.md has the steps and what behaves differently.

// DefaultRPCPath and DefaultDebugPath are the paths HandleHTTP serves, as
// in net/rpc.
const (
	DefaultRPCPath   = "/_goRPC_"
	DefaultDebugPath = "/debug/rpc"
)

// ServerCodec is net/rpc's server codec, so that codecs written for net/rpc,
// such as net/rpc/jsonrpc's, serve this package's services (ServeCodec,
// ServeRequest). Its ReadRequestHeader takes net/rpc's *Request: a codec
// written for net/rpc keeps importing "net/rpc" for that type, because
// Request in this package is what interceptors see.
type ServerCodec = netrpc.ServerCodec

// ClientCodec is net/rpc's client codec, so that codecs written for net/rpc,
// such as net/rpc/jsonrpc's, carry this package's calls (NewClientWithCodec).
type ClientCodec = netrpc.ClientCodec

// Response is net/rpc's response header, which a ClientCodec reads and a
// ServerCodec writes.
type Response = netrpc.Response

// Accept serves the connections lis accepts with DefaultServer, as
// (*Server).Accept does.
func Accept(lis net.Listener) { DefaultServer.Accept(lis) }

// ServeConn serves one connection with DefaultServer until it ends, as
// (*Server).ServeConn does.
func ServeConn(conn io.ReadWriteCloser) { DefaultServer.ServeConn(conn) }

// ServeCodec serves codec with DefaultServer until it fails, as
// (*Server).ServeCodec does.
func ServeCodec(codec ServerCodec) { DefaultServer.ServeCodec(codec) }

// ServeRequest serves one request read from codec with DefaultServer, as
// (*Server).ServeRequest does.
func ServeRequest(codec ServerCodec) error { return DefaultServer.ServeRequest(codec) }

// HandleHTTP registers DefaultServer's RPC handler at DefaultRPCPath and its
// debug page at DefaultDebugPath on http.DefaultServeMux, as
// (*Server).HandleHTTP does. Like net/rpc's, it panics if called twice.
func HandleHTTP() { DefaultServer.HandleHTTP(DefaultRPCPath, DefaultDebugPath) }

// rwcConn makes an io.ReadWriteCloser that is not a net.Conn (a pipe, a
// stream of a multiplexer without deadlines) usable where a net.Conn is:
// its deadlines do nothing, so writes to it are bounded only by closing it.
type rwcConn struct{ io.ReadWriteCloser }

// asNetConn returns rwc as a net.Conn.
func asNetConn(rwc io.ReadWriteCloser) net.Conn {
	if nc, ok := rwc.(net.Conn); ok {
		return nc
	}
	return rwcConn{rwc}
}

func (rwcConn) LocalAddr() net.Addr              { return rwcAddr{} }
func (rwcConn) RemoteAddr() net.Addr             { return rwcAddr{} }
func (rwcConn) SetDeadline(time.Time) error      { return nil }
func (rwcConn) SetReadDeadline(time.Time) error  { return nil }
func (rwcConn) SetWriteDeadline(time.Time) error { return nil }

// rwcAddr is the address of a connection that has none.
type rwcAddr struct{}

func (rwcAddr) Network() string { return "pipe" }
func (rwcAddr) String() string  { return "pipe" }
