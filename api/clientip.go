package api

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// clientIP is the address of the client a request comes from, for limits
// per client: the connection's peer, unless the peer is one of the trusted
// proxies, in which case X-Forwarded-For is read from the right (the entry
// the nearest proxy appended) to the left, skipping trusted proxies, and the
// first address that is not one is the client. Everything left of it was
// written by the client and is ignored, so a client cannot choose its
// address by sending the header itself; the header of an untrusted peer is
// never read. An entry that is not an address ends the walk at the hop that
// handed it over (a trusted proxy, which then stands for the client). When
// every hop is trusted, the farthest is the client. The zero Addr means the
// peer is not an IP address at all.
func clientIP(peer string, h http.Header, trusted []netip.Prefix) netip.Addr {
	addr, ok := parseHop(peer)
	if !ok {
		return netip.Addr{}
	}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if !isTrusted(addr) {
		return addr
	}
	// Several header lines are one list, in order (RFC 9110, 5.3).
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(line, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			return addr
		}
		addr = hop
		if !isTrusted(addr) {
			return addr
		}
	}
	return addr
}

// parseHop reads an address as peers and proxies write it: 192.0.2.1,
// 192.0.2.1:443, 2001:db8::1, [2001:db8::1] or [2001:db8::1]:443, with
// spaces around. IPv4-mapped IPv6 addresses are the IPv4 address, and zones
// are dropped, so one client has one form.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
				return netip.Addr{}, false
			}
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone(""), true
}

// ipThrottleKey identifies a client address in the throttle table without
// storing it. An IPv6 client counts by its /64: one subscriber usually holds
// a whole /64, so counting single addresses would give a sprayer 2^64 fresh
// allowances.
func ipThrottleKey(a netip.Addr) string { return addrThrottleKey(loginAddrScope, a) }

// addrThrottleKey is the throttle key of a client address for one limit
// (scope): an IPv6 address counts as its /64, which one client usually
// holds whole.
func addrThrottleKey(scope string, a netip.Addr) string {
	id := a.String()
	if a.Is6() {
		id = netip.PrefixFrom(a, 64).Masked().String()
	}
	return limitKey(scope, id)
}
