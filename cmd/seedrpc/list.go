package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedrpc/rpc/registry"
)

func runList(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "list")
	rf := addRedisFlags(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case rf.addr == "":
		return usagef("-redis is required")
	case len(pos) > 1:
		return usagef("too many arguments: %q", pos)
	}
	rc, err := rf.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if len(pos) == 1 {
		return listInstances(ctx, e, rc, pos[0])
	}
	return listServices(ctx, e, rc, rf.addr)
}

// listServices prints every service with live instances and their count.
func listServices(ctx context.Context, e env, rc *registryConn, addr string) error {
	names, err := rc.services(ctx)
	if err != nil {
		return err
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	found := 0
	for _, name := range names {
		insts, err := rc.reg.Lookup(ctx, name)
		if err != nil {
			return err
		}
		if len(insts) == 0 {
			continue // all expired: the keys linger until Redis drops them
		}
		if found == 0 {
			fmt.Fprintln(tw, "SERVICE\tINSTANCES")
		}
		found++
		fmt.Fprintf(tw, "%s\t%d\n", name, len(insts))
	}
	if found == 0 {
		return fmt.Errorf("no services registered at %s (prefix %q)", addr, rc.prefix)
	}
	return tw.Flush()
}

// listInstances prints the live instances of service with the time until
// each expires unless heartbeats refresh it.
func listInstances(ctx context.Context, e env, rc *registryConn, service string) error {
	insts, err := rc.reg.Lookup(ctx, service)
	if err != nil {
		return err
	}
	if len(insts) == 0 {
		return fmt.Errorf("%w %q", errNoInstances, service)
	}
	expiry, err := rc.expiries(ctx, service)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDR\tWEIGHT\tEXPIRES IN\tMETA")
	for _, inst := range insts {
		exp := "?"
		if d, ok := expiry[inst.Addr]; ok {
			exp = d.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", inst.Addr, inst.Weight, exp, metaString(inst))
	}
	return tw.Flush()
}

var errNoInstances = errors.New("no instances of")

// expiries returns, by address, how long each instance of service has left
// on Redis's clock.
func (rc *registryConn) expiries(ctx context.Context, service string) (map[string]time.Duration, error) {
	now, err := rc.rdb.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("redis TIME: %w", err)
	}
	zs, err := rc.rdb.ZRangeWithScores(ctx, rc.instancesKey(service), 0, -1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read %s: %w", rc.instancesKey(service), err)
	}
	out := make(map[string]time.Duration, len(zs))
	for _, z := range zs {
		addr, ok := z.Member.(string)
		if !ok {
			continue
		}
		out[addr] = time.Duration(int64(z.Score)-now.UnixMilli()) * time.Millisecond
	}
	return out, nil
}

// metaString shows an instance's labels as k=v,k=v in key order, or "-".
func metaString(inst registry.Instance) string {
	if len(inst.Meta) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(inst.Meta)) {
		parts = append(parts, k+"="+inst.Meta[k])
	}
	return strings.Join(parts, ",")
}
