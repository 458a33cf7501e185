package middleware

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"

	rpc "github.com/seedrpc/rpc"
)

// Rule is one line of an ACL. A call matches it when its peer's address is
// in one of Nets and its method matches one of Methods; an empty list
// matches every peer, or every method.
type Rule struct {
	// Allow is what a matching call gets: admitted, or refused with
	// rpc.ErrPermissionDenied.
	Allow bool
	// Nets are CIDR prefixes ("10.0.0.0/8", "2001:db8::/32") or single
	// addresses ("127.0.0.1"). IPv4-mapped IPv6 peers match IPv4 prefixes.
	// A peer that is not an IP address (a net.Pipe, say) matches only
	// rules without Nets.
	Nets []string
	// Methods are "Service.Method" patterns in path.Match syntax:
	// "Calc.Add", "Admin.*", "*.Get*", "*".
	Methods []string
}

// acl is a parsed Rule.
type aclRule struct {
	allow   bool
	nets    []netip.Prefix
	methods []string
}

// ACL returns an interceptor that checks every call against rules in
// order: the first rule that matches decides. A call no rule matches is
// refused, so end with Rule{Allow: true} to admit the rest. It returns an
// error naming the rule for a malformed prefix or pattern.
func ACL(rules ...Rule) (rpc.ServerInterceptor, error) {
	parsed := make([]aclRule, 0, len(rules))
	for i, r := range rules {
		pr := aclRule{allow: r.Allow, methods: append([]string(nil), r.Methods...)}
		for _, n := range r.Nets {
			p, err := parsePrefix(n)
			if err != nil {
				return nil, fmt.Errorf("middleware: ACL rule %d: %w", i, err)
			}
			pr.nets = append(pr.nets, p)
		}
		for _, m := range r.Methods {
			if _, err := path.Match(m, ""); err != nil {
				return nil, fmt.Errorf("middleware: ACL rule %d: method pattern %q: %w", i, m, err)
			}
		}
		parsed = append(parsed, pr)
	}
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
		ip, hasIP := peerIP(req.Peer)
		for i := range parsed {
			r := &parsed[i]
			if r.matches(req.ServiceMethod, ip, hasIP) {
				if r.allow {
					return next(ctx, req)
				}
				return nil, fmt.Errorf("%w: %s from %s: denied by ACL rule %d", rpc.ErrPermissionDenied, req.ServiceMethod, req.Peer, i)
			}
		}
		return nil, fmt.Errorf("%w: %s from %s: no ACL rule allows it", rpc.ErrPermissionDenied, req.ServiceMethod, req.Peer)
	}, nil
}

func (r *aclRule) matches(method string, ip netip.Addr, hasIP bool) bool {
	if len(r.nets) > 0 {
		if !hasIP {
			return false
		}
		in := false
		for _, p := range r.nets {
			if p.Contains(ip) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if ok, _ := path.Match(m, method); ok {
			return true
		}
	}
	return false
}

// parsePrefix parses a CIDR prefix or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// peerIP returns the IP address of a peer, IPv4-mapped addresses unmapped.
func peerIP(addr net.Addr) (netip.Addr, bool) {
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
