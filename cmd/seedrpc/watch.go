package main

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/seedrpc/rpc/registry"
)

func runWatch(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "watch")
	rf := addRedisFlags(fs)
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case rf.addr == "":
		return usagef("-redis is required")
	case len(pos) != 1:
		return usagef("want one SERVICE, got %d arguments", len(pos))
	}
	service := pos[0]
	rc, err := rf.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	// Fail at once on an unreachable Redis rather than watch nothing.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = rc.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis %s: %w", rf.addr, err)
	}
	ch, err := rc.reg.Watch(ctx, service)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "watching %s at %s; interrupt to stop\n", service, rf.addr)
	prev := map[string]registry.Instance{}
	first := true
	for insts := range ch { // closed when ctx ends (interrupt)
		cur := make(map[string]registry.Instance, len(insts))
		for _, inst := range insts {
			cur[inst.Addr] = inst
		}
		now := time.Now().Format("15:04:05.000")
		for _, inst := range insts {
			old, had := prev[inst.Addr]
			switch {
			case !had:
				fmt.Fprintf(e.stdout, "%s + %s weight=%d meta=%s\n", now, inst.Addr, inst.Weight, metaString(inst))
			case old.Weight != inst.Weight || !maps.Equal(old.Meta, inst.Meta):
				fmt.Fprintf(e.stdout, "%s ~ %s weight=%d meta=%s\n", now, inst.Addr, inst.Weight, metaString(inst))
			}
		}
		for addr := range prev {
			if _, ok := cur[addr]; !ok {
				fmt.Fprintf(e.stdout, "%s - %s\n", now, addr)
			}
		}
		if first && len(insts) == 0 {
			fmt.Fprintf(e.stderr, "no instances of %s yet\n", service)
		}
		first = false
		prev = cur
	}
	return nil
}
