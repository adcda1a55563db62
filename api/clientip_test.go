package api

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	}
	tests := []struct {
		name    string
		peer    string
		xff     []string // header lines
		trusted []netip.Prefix
		want    string // "" = no address
	}{
		{"direct client", "203.0.113.5:51000", nil, proxies, "203.0.113.5"},
		{"no trusted proxies: XFF ignored", "10.1.2.3:443", []string{"198.51.100.7"}, nil, "10.1.2.3"},
		{"spoofed XFF from an untrusted peer ignored", "203.0.113.5:51000", []string{"198.51.100.7"}, proxies, "203.0.113.5"},
		{"spoofed XFF from an untrusted peer that says it is a proxy", "203.0.113.5:51000", []string{"10.0.0.1"}, proxies, "203.0.113.5"},
		{"one trusted proxy", "10.0.0.1:443", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"trusted proxy, client-supplied entries left of it ignored", "10.0.0.1:443", []string{"1.1.1.1, 8.8.8.8, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"client pretends to be a proxy", "10.0.0.1:443", []string{"198.51.100.7, 10.9.9.9, 203.0.113.9"}, proxies, "203.0.113.9"},
		{"chain of trusted proxies", "10.0.0.1:443", []string{"198.51.100.7, 192.0.2.10, 10.2.3.4"}, proxies, "198.51.100.7"},
		{"chain over several header lines", "10.0.0.1:443", []string{"6.6.6.6, 198.51.100.7", "192.0.2.10", "10.2.3.4"}, proxies, "198.51.100.7"},
		{"every hop trusted: the farthest", "10.0.0.1:443", []string{"10.3.3.3, 192.0.2.10"}, proxies, "10.3.3.3"},
		{"trusted proxy without XFF", "10.0.0.1:443", nil, proxies, "10.0.0.1"},
		{"trusted proxy with empty XFF", "10.0.0.1:443", []string{""}, proxies, "10.0.0.1"},
		{"entries with ports and spaces", "10.0.0.1:443", []string{" 198.51.100.7:4711 ,  192.0.2.10:80 "}, proxies, "198.51.100.7"},
		{"IPv6 peer", "[2001:db8:1::5]:443", nil, proxies, "2001:db8:1::5"},
		{"IPv6 peer with zone", "[fe80::1%eth0]:443", nil, proxies, "fe80::1"},
		{"IPv6 trusted proxy, IPv6 client", "[2001:db8:ffff::1]:443", []string{"2001:db8:1::5"}, proxies, "2001:db8:1::5"},
		{"IPv6 client in brackets with port", "[2001:db8:ffff::1]:443", []string{"[2001:db8:1::5]:1234"}, proxies, "2001:db8:1::5"},
		{"IPv6 client in brackets", "10.0.0.1:443", []string{"[2001:db8:1::5]"}, proxies, "2001:db8:1::5"},
		{"IPv4-mapped IPv6 peer is IPv4", "[::ffff:10.0.0.1]:443", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"IPv4-mapped IPv6 client is IPv4", "10.0.0.1:443", []string{"::ffff:198.51.100.7"}, proxies, "198.51.100.7"},
		{"garbage right of the client: the proxy that passed it", "10.0.0.1:443", []string{"198.51.100.7, garbage"}, proxies, "10.0.0.1"},
		{"garbage behind a second proxy", "10.0.0.1:443", []string{"198.51.100.7, not-an-ip, 192.0.2.10"}, proxies, "192.0.2.10"},
		{"garbage left of the client is ignored", "10.0.0.1:443", []string{"<script>, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"empty entry is garbage", "10.0.0.1:443", []string{"198.51.100.7,,"}, proxies, "10.0.0.1"},
		{"bracket without address", "10.0.0.1:443", []string{"[]"}, proxies, "10.0.0.1"},
		{"host name is garbage", "10.0.0.1:443", []string{"client.example.com"}, proxies, "10.0.0.1"},
		{"peer without port", "203.0.113.5", nil, proxies, "203.0.113.5"},
		{"peer not an address", "@", []string{"198.51.100.7"}, proxies, ""},
		{"no peer", "", nil, proxies, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.xff {
				h.Add("X-Forwarded-For", v)
			}
			got := clientIP(tc.peer, h, tc.trusted)
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("clientIP = %v, want none", got)
				}
				return
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Fatalf("clientIP(%q, XFF %q) = %v, want %v", tc.peer, tc.xff, got, want)
			}
		})
	}
}

func TestIPThrottleKey(t *testing.T) {
	key := func(s string) string { return ipThrottleKey(netip.MustParseAddr(s)) }
	if key("2001:db8:1:2::5") != key("2001:db8:1:2:ffff:ffff:ffff:ffff") {
		t.Error("two addresses of one IPv6 /64 have different keys")
	}
	if key("2001:db8:1:2::5") == key("2001:db8:1:3::5") {
		t.Error("two IPv6 /64s share a key")
	}
	if key("198.51.100.7") == key("198.51.100.8") {
		t.Error("two IPv4 addresses share a key")
	}
	if k := key("198.51.100.7"); len(k) != 64 || k == throttleKey("198.51.100.7") {
		t.Errorf("key %q: want a 64-digit hash apart from email keys", k)
	}
}
