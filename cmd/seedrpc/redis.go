package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/seedrpc/rpc/registry"
)

// redisFlags are the flags of the commands that read the registry.
type redisFlags struct {
	addr, prefix string
}

func addRedisFlags(fs *flag.FlagSet) *redisFlags {
	rf := &redisFlags{}
	fs.StringVar(&rf.addr, "redis", "", "the registry's Redis: host:port, host:port,host:port (Cluster) or a redis:// or rediss:// URL")
	fs.StringVar(&rf.prefix, "prefix", "seedrpc", "the registry's key prefix (registry.WithPrefix)")
	return rf
}

// quietLogger drops go-redis's own logging (retried dials and the like):
// the command reports the errors it gets.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// registryConn is an open Redis client and the registry over it.
type registryConn struct {
	rdb    redis.UniversalClient
	reg    *registry.Redis
	prefix string
}

func (rf *redisFlags) open() (*registryConn, error) {
	var rdb redis.UniversalClient
	if strings.HasPrefix(rf.addr, "redis://") || strings.HasPrefix(rf.addr, "rediss://") {
		opt, err := redis.ParseURL(rf.addr)
		if err != nil {
			return nil, usageError{msg: fmt.Sprintf("-redis %s: %v", rf.addr, err)}
		}
		opt.ContextTimeoutEnabled = true
		rdb = redis.NewClient(opt)
	} else {
		rdb = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:                 strings.Split(rf.addr, ","),
			ContextTimeoutEnabled: true,
			MaxRetries:            1,
		})
	}
	return &registryConn{rdb: rdb, reg: registry.NewRedis(rdb, registry.WithPrefix(rf.prefix)), prefix: rf.prefix}, nil
}

func (rc *registryConn) Close() {
	rc.reg.Close()
	rc.rdb.Close()
}

// instancesKey is the sorted set of a service's instances, scored by
// expiry in milliseconds on Redis's clock (see registry.Redis, "Data
// layout").
func (rc *registryConn) instancesKey(service string) string {
	return "{" + rc.prefix + ":" + service + "}:instances"
}

// services scans for the services that have an instances key, on every
// master of a Cluster.
func (rc *registryConn) services(ctx context.Context) ([]string, error) {
	head, tail := "{"+rc.prefix+":", "}:instances"
	pattern := "{" + globEscape(rc.prefix) + ":*}:instances"
	var mu sync.Mutex // guards names: ForEachMaster scans nodes at once
	names := make(map[string]bool)
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			if strings.HasPrefix(key, head) && strings.HasSuffix(key, tail) && len(key) > len(head)+len(tail) {
				mu.Lock()
				names[key[len(head):len(key)-len(tail)]] = true
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	var err error
	switch c := rc.rdb.(type) {
	case *redis.Client:
		err = scan(ctx, c)
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	default:
		err = errors.New("listing services needs a single Redis or a Cluster")
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", rc.prefix, err)
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	return out, nil
}

// globEscape escapes the characters SCAN's MATCH pattern gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
