package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	rpc "github.com/seedrpc/rpc"
	"github.com/vmihailenco/msgpack/v5"
)

// Large messages: the -hol and -throughput modes (issue 12). Their servers
// run in a child process like every other system's, under names that only
// -serve knows (largeSystems), so the standard run does not pick them up.

// largeFlags are the flags of the large-message modes.
type largeFlags struct {
	hol        *bool
	throughput *bool
	sizes      *string
	payloads   *string
	conc       *string
	pools      *string
	every      *time.Duration
	holModes   *string
	holSize    *string
}

// addLargeFlags registers the large-message flags on fs.
func addLargeFlags(fs *flag.FlagSet) *largeFlags {
	return &largeFlags{
		hol:        fs.Bool("hol", false, "measure head-of-line blocking: small calls every -hol-every while two goroutines echo 8 MiB bodies"),
		throughput: fs.Bool("throughput", false, "measure large-echo throughput (MB/s) of seedrpc against raw TCP"),
		sizes:      fs.String("sizes", "1MiB,8MiB", "-throughput: comma-separated body sizes (KiB or MiB suffix)"),
		payloads:   fs.String("payloads", "random,msgpack", "-throughput: body kinds: random (incompressible), msgpack (encoded structs, compressible)"),
		conc:       fs.String("large-concurrency", "1,2", "-throughput: comma-separated numbers of concurrent callers"),
		pools:      fs.String("hol-pools", "1,4", "-hol: comma-separated client pool sizes to measure (4 is the default pool)"),
		every:      fs.Duration("hol-every", 5*time.Millisecond, "-hol: interval between small calls"),
		holSize:    fs.String("hol-size", "8MiB", "-hol: size of the large bodies (at most 8MiB)"),
		holModes:   fs.String("hol-modes", "echo", "-hol: comma-separated loads: echo (8 MiB requests and replies), download (small requests, 8 MiB replies)"),
	}
}

// active reports whether a large-message mode was asked for.
func (f *largeFlags) active() bool { return *f.hol || *f.throughput }

// runLarge runs the large-message modes that were asked for.
// profileDir (the -cpuprofile flag, made absolute) is where -throughput
// writes CPU profiles of each point; "" for none.
func runLarge(ctx context.Context, f *largeFlags, duration time.Duration, profileDir string, jsonOut bool, stdout, stderr io.Writer) error {
	var errs []error
	if *f.hol {
		pools, err := parseInts(*f.pools)
		if err != nil {
			return err
		}
		if *f.every <= 0 {
			return errors.New("bench: -hol-every must be positive")
		}
		var modes []string
		for _, m := range strings.Split(*f.holModes, ",") {
			switch m = strings.TrimSpace(m); m {
			case "echo", "download":
				modes = append(modes, m)
			default:
				return fmt.Errorf("bench: bad -hol-modes entry %q (have echo, download)", m)
			}
		}
		size, err := parseSizes(*f.holSize)
		if err != nil || len(size) != 1 || size[0] > holBigSize {
			return fmt.Errorf("bench: bad -hol-size %q (want one size, at most 8MiB)", *f.holSize)
		}
		errs = append(errs, runHOL(ctx, holConfig{pools: pools, modes: modes, size: size[0], every: *f.every, duration: duration}, jsonOut, stdout, stderr))
	}
	if *f.throughput {
		sizes, err := parseSizes(*f.sizes)
		if err != nil {
			return err
		}
		conc, err := parseInts(*f.conc)
		if err != nil {
			return err
		}
		kinds, err := parsePayloads(*f.payloads)
		if err != nil {
			return err
		}
		errs = append(errs, runThroughput(ctx, tputConfig{sizes: sizes, kinds: kinds, conc: conc, duration: duration, profileDir: profileDir}, jsonOut, stdout, stderr))
	}
	return errors.Join(errs...)
}

// parseSizes parses "1MiB,8MiB,512KiB".
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "MiB"):
			f, mult = strings.TrimSuffix(f, "MiB"), 1<<20
		case strings.HasSuffix(f, "KiB"):
			f, mult = strings.TrimSuffix(f, "KiB"), 1<<10
		}
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 || n*mult > 15<<20 {
			return nil, fmt.Errorf("bench: bad size %q (want e.g. 1MiB, 512KiB; at most 15MiB)", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func parsePayloads(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f != "random" && f != "msgpack" {
			return nil, fmt.Errorf("bench: bad payload kind %q (have random, msgpack)", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// sizeName is "8MiB" or "512KiB".
func sizeName(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// largeBody returns n bytes of the given kind: "random" (incompressible) or
// "msgpack" (encoded BenchmarkMessages with varied ids and text, about as
// compressible as real RPC payloads).
func largeBody(kind string, n int) []byte {
	out := make([]byte, 0, n+4096)
	r := rand.New(rand.NewPCG(uint64(n), 12))
	if kind == "random" {
		out = out[:n]
		for i := 0; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(out[i:], r.Uint64())
		}
		return out
	}
	words := strings.Fields("order payment invoice customer shipment warehouse product price discount latency request response")
	m := newMessage()
	for i := 0; len(out) < n; i++ {
		m.Field22 = int64(i) * 7919
		m.Field2 = r.Int32N(1 << 20)
		m.Field7 = fmt.Sprintf("%s %s #%d", words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1e6))
		b, err := msgpack.Marshal(m)
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
	}
	return out[:n]
}

// largeSystems are the servers of the large-message modes, started with
// -serve NAME like the others.
func largeSystems() []system {
	return []system{
		{
			name: "seedrpc-large",
			newServer: func(codecMode) (server, error) {
				s := rpc.NewServer()
				if err := s.RegisterName("Large", &LargeService{}); err != nil {
					return nil, err
				}
				return seedServer{s}, nil
			},
			describe: "seedrpc defaults; Large.Echo ([]byte), Large.Download and Large.Add",
		},
		{
			name: "seedrpc-large-s2",
			newServer: func(codecMode) (server, error) {
				s := rpc.NewServer(rpc.WithCompression(largeCompressMin))
				if err := s.RegisterName("Large", &LargeService{}); err != nil {
					return nil, err
				}
				return seedServer{s}, nil
			},
			describe: "seedrpc with WithCompression(4096) on both sides",
		},
		{
			name:      "rawtcp-large",
			newServer: func(codecMode) (server, error) { return newRawLargeServer(), nil },
			describe:  "length-prefixed echo: read the whole body, then write it back",
		},
	}
}

// largeCompressMin is the compression threshold of seedrpc-large-s2.
const largeCompressMin = 4096

// LargeService is the service of the large-message modes.
type LargeService struct {
	once sync.Once
	// download is the reply of Download, made once.
	download []byte
}

// AddArgs are Add's operands.
type AddArgs struct{ A, B int }

// Echo returns its argument.
func (*LargeService) Echo(_ context.Context, args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// Download returns the first n bytes (at most holBigSize) of a random
// body: a small request with a large reply.
func (s *LargeService) Download(_ context.Context, n int, reply *[]byte) error {
	if n < 0 || n > holBigSize {
		return fmt.Errorf("download of %d bytes: want 0 to %d", n, holBigSize)
	}
	s.once.Do(func() { s.download = largeBody("random", holBigSize) })
	*reply = s.download[:n]
	return nil
}

// Add returns the sum of its operands: the small call.
func (*LargeService) Add(_ context.Context, args AddArgs, reply *int) error {
	*reply = args.A + args.B
	return nil
}

// rawLargeMax bounds a raw large frame.
const rawLargeMax = 64 << 20

// rawLargeServer echoes length-prefixed frames of any size up to
// rawLargeMax, store and forward (a whole body is read before it is written
// back, as an RPC server must), one goroutine per connection.
type rawLargeServer struct {
	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func newRawLargeServer() *rawLargeServer {
	return &rawLargeServer{conns: make(map[net.Conn]struct{})}
}

func (s *rawLargeServer) Serve(lis net.Listener) error {
	defer s.wg.Wait()
	for {
		c, err := lis.Accept()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			rawLargeEcho(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *rawLargeServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return nil
}

// rawLargeEcho serves one connection until it fails.
func rawLargeEcho(c net.Conn) error {
	r := bufio.NewReaderSize(c, rawBufSize)
	var buf []byte
	for {
		var hdr [rawLenSize]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > rawLargeMax {
			return errRawFrameTooLarge
		}
		if cap(buf) < rawLenSize+n {
			buf = make([]byte, rawLenSize+n)
		}
		buf = buf[:rawLenSize+n]
		copy(buf, hdr[:])
		if _, err := io.ReadFull(r, buf[rawLenSize:]); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}

// rawLargeConn is a client connection to rawtcp-large, used by one caller.
type rawLargeConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	resp []byte
}

func dialRawLarge(addr string) (*rawLargeConn, error) {
	c, err := net.DialTimeout("tcp", addr, closeTimeout)
	if err != nil {
		return nil, err
	}
	return &rawLargeConn{c: c, r: bufio.NewReaderSize(c, rawBufSize)}, nil
}

// echo sends body and reads the echo, checking it byte for byte; the whole
// exchange is bounded by deadline.
func (rc *rawLargeConn) echo(body []byte, deadline time.Time) error {
	rc.c.SetDeadline(deadline)
	rc.req = binary.BigEndian.AppendUint32(rc.req[:0], uint32(len(body)))
	rc.req = append(rc.req, body...)
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	var hdr [rawLenSize]byte
	if _, err := io.ReadFull(rc.r, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n != len(body) {
		return fmt.Errorf("%w: echo of %d bytes, sent %d", errMismatch, n, len(body))
	}
	if cap(rc.resp) < n {
		rc.resp = make([]byte, n)
	}
	rc.resp = rc.resp[:n]
	if _, err := io.ReadFull(rc.r, rc.resp); err != nil {
		return err
	}
	if !bytes.Equal(rc.resp, body) {
		return fmt.Errorf("%w: echoed bytes differ", errMismatch)
	}
	return nil
}

func (rc *rawLargeConn) Close() error { return rc.c.Close() }
