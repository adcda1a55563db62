package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers from a table; a missing name does not resolve.
type fakeResolver struct {
	hosts map[string][]netip.Addr
	calls atomic.Int32
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	addrs, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]netip.Addr{
		"example.com":          addrs("93.184.216.34"),
		"internal.example.com": addrs("10.1.2.3"),
		"mixed.example.com":    addrs("93.184.216.34", "192.168.0.10"),
		"v6.example.com":       addrs("2606:2800:220:1:248:1893:25c8:1946"),
		"empty.example.com":    {},
		"rebind.example.com":   addrs("::ffff:127.0.0.1"),
		// Names the policy must refuse before asking DNS: the fake
		// resolver says they are public, so only the name check stops them.
		"localhost":                addrs("93.184.216.34"),
		"foo.localhost":            addrs("93.184.216.34"),
		"metadata.google.internal": addrs("93.184.216.34"),
	}}
}

func TestURLPolicyCheckSecure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url    string
		refuse bool
	}{
		{"not a url", true},
		{"://missing-scheme", true},
		{"/relative/hook", true},
		{"example.com/hook", true},
		{"ftp://example.com/hook", true},
		{"http://example.com/hook", true},
		{"https:///no-host", true},
		{"https://127.0.0.1/", true},
		{"https://127.0.0.1:8443/hook", true},
		{"https://[::1]/", true},
		{"https://10.0.0.1/", true},
		{"https://172.16.5.4/", true},
		{"https://192.168.1.1/", true},
		{"https://169.254.169.254/latest/meta-data", true},
		{"https://[fd00:ec2::254]/", true},
		{"https://[fe80::1%25eth0]/", true},
		{"https://100.100.100.200/", true},
		{"https://0.0.0.0/", true},
		{"https://[::]/", true},
		{"https://224.0.0.1/", true},
		{"https://255.255.255.255/", true},
		{"https://198.18.0.1/", true},
		{"https://[::ffff:127.0.0.1]/", true},
		{"https://[::ffff:169.254.169.254]/", true},
		{"https://[::ffff:100.100.100.200]/", true},
		{"https://[64:ff9b::a9fe:a9fe]/", true}, // NAT64 of 169.254.169.254
		{"https://localhost/", true},
		{"https://LOCALHOST./", true},
		{"https://foo.localhost/", true},
		{"https://metadata.google.internal/", true},
		{"https://printer.local/", true},
		{"https://user:pass@example.com/", true},
		{"https://user@example.com/", true},
		{"https://example.com/hook#frag", true},
		{"https://internal.example.com/hook", true}, // resolves to 10.1.2.3
		{"https://mixed.example.com/hook", true},    // one public, one private
		{"https://rebind.example.com/hook", true},   // IPv4-mapped loopback
		{"https://nowhere.example.com/hook", true},  // does not resolve
		{"https://empty.example.com/hook", true},    // resolves to nothing
		{"https://example.com/hook", false},
		{"https://example.com:8443/hook?x=1", false},
		{"https://v6.example.com/hook", false},
		{"https://93.184.216.34:8443/x", false},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			p := URLPolicy{Resolver: newFakeResolver()}
			err := p.Check(context.Background(), tt.url)
			if !tt.refuse {
				if err != nil {
					t.Errorf("Check(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("Check(%q) = %v (%T), want a *URLError", tt.url, err, err)
			}
			if ue.Reason == "" || ue.Error() != ue.Reason {
				t.Errorf("Check(%q): URLError reason %q / Error() %q", tt.url, ue.Reason, ue.Error())
			}
		})
	}
}

func TestURLPolicyCheckNamesRefusedBeforeDNS(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://localhost/", "https://foo.localhost/", "https://metadata.google.internal/", "https://10.0.0.1/", "https://93.184.216.34/"} {
		r := newFakeResolver()
		_ = URLPolicy{Resolver: r}.Check(context.Background(), u)
		if n := r.calls.Load(); n != 0 {
			t.Errorf("Check(%q) asked the resolver %d times, want 0", u, n)
		}
	}
	r := newFakeResolver()
	if err := (URLPolicy{Resolver: r}).Check(context.Background(), "https://example.com/"); err != nil {
		t.Fatal(err)
	}
	if r.calls.Load() != 1 {
		t.Errorf("Check of a name asked the resolver %d times, want 1", r.calls.Load())
	}
}

func TestURLPolicyCheckInsecure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url    string
		refuse bool
	}{
		{"http://127.0.0.1:1234/", false},
		{"https://127.0.0.1:1234/", false},
		{"http://localhost:8080/hook", false},
		{"http://10.0.0.1/", false},
		{"ftp://127.0.0.1/", true},
		{"file:///etc/passwd", true},
		{"/relative", true},
		{"http://user:pass@127.0.0.1/", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			p := URLPolicy{AllowInsecure: true, Resolver: newFakeResolver()}
			err := p.Check(context.Background(), tt.url)
			var ue *URLError
			switch {
			case tt.refuse && !errors.As(err, &ue):
				t.Errorf("Check(%q) = %v, want a *URLError", tt.url, err)
			case !tt.refuse && err != nil:
				t.Errorf("Check(%q) = %v, want nil", tt.url, err)
			}
		})
	}
}

func TestBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"10.0.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"fe80::1", true},
		{"fd00:ec2::254", true},
		{"fc00::1", true},
		{"100.64.0.1", true},
		{"100.100.100.200", true},
		{"100.127.255.255", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"ff05::2", true},
		{"192.0.0.8", true},
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"198.51.100.7", true},
		{"203.0.113.9", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{"2001:db8::1", true},
		{"64:ff9b::7f00:1", true},
		{"64:ff9b:1::1", true},
		{"100::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:192.168.1.1", true},
		{"::ffff:100.100.100.200", true}, // ranges only blockedPrefixes name
		{"::ffff:0.1.2.3", true},
		{"::ffff:198.18.0.1", true},
		{"::ffff:240.0.0.1", true},
		{"93.184.216.34", false},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"172.32.0.1", false},
		{"100.128.0.1", false},
		{"198.20.0.1", false},
		{"::ffff:93.184.216.34", false},
		{"2606:2800:220:1:248:1893:25c8:1946", false},
		{"2001:4860:4860::8888", false},
	}
	for _, tt := range tests {
		why, blocked := Blocked(netip.MustParseAddr(tt.addr))
		if blocked != tt.blocked {
			t.Errorf("Blocked(%s) = %q, %v; want blocked %v", tt.addr, why, blocked, tt.blocked)
		}
		if blocked && why == "" {
			t.Errorf("Blocked(%s) gives no reason", tt.addr)
		}
		if !blocked && why != "" {
			t.Errorf("Blocked(%s) not blocked but reason %q", tt.addr, why)
		}
	}
	if _, blocked := Blocked(netip.Addr{}); !blocked {
		t.Errorf("Blocked(zero Addr) = false, want true")
	}
}

// hitServer is an httptest server on 127.0.0.1 counting its requests.
func hitServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("httptest server at %s, want 127.0.0.1", srv.URL)
	}
	return srv, &hits
}

func TestClientRefusesInternalAddressAtDial(t *testing.T) {
	t.Parallel()
	srv, hits := hitServer(t, nil)
	c := URLPolicy{}.Client(2 * time.Second)
	resp, err := c.Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request to %s succeeded (status %d), want ErrBlockedAddress", srv.URL, resp.StatusCode)
	}
	if !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("error = %v, want one wrapping ErrBlockedAddress", err)
	}
	if hits.Load() != 0 {
		t.Errorf("server got %d requests, want 0", hits.Load())
	}
}

func TestClientInsecureReachesLoopback(t *testing.T) {
	t.Parallel()
	srv, hits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	c := URLPolicy{AllowInsecure: true}.Client(2 * time.Second)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("request with AllowInsecure: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || hits.Load() != 1 {
		t.Errorf("status %d, hits %d; want 200, 1", resp.StatusCode, hits.Load())
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	target, targetHits := hitServer(t, nil)
	srv, _ := hitServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	})
	c := URLPolicy{AllowInsecure: true}.Client(2 * time.Second)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status = %d, want the 302 itself", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != target.URL+"/elsewhere" {
		t.Errorf("Location = %q", loc)
	}
	if targetHits.Load() != 0 {
		t.Errorf("redirect target got %d requests, want 0", targetHits.Load())
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	c := URLPolicy{AllowInsecure: true}.Client(1500 * time.Millisecond)
	if c.Timeout != 1500*time.Millisecond {
		t.Errorf("client timeout = %v, want 1.5s", c.Timeout)
	}
}

// Not parallel: t.Setenv.
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	// A proxy that would answer (and count) if the client used it.
	proxy, proxyHits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "proxied", http.StatusBadGateway)
	})
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	srv, hits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "direct") })

	c := URLPolicy{AllowInsecure: true}.Client(2 * time.Second)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("client transport is %T, want *http.Transport", c.Transport)
	}
	if tr.Proxy != nil {
		// Whatever the function, it would read the environment's proxy
		// for a public host (Go exempts only loopback hosts).
		t.Errorf("client transport has a Proxy function, want none")
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("Get with proxy variables set: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || hits.Load() != 1 {
		t.Errorf("status %d, server hits %d; want 200 and 1", resp.StatusCode, hits.Load())
	}
	if proxyHits.Load() != 0 {
		t.Errorf("the proxy got %d requests, want 0", proxyHits.Load())
	}

	// And a proxy that does not exist changes nothing either.
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		t.Setenv(k, "http://127.0.0.1:1")
	}
	c = URLPolicy{AllowInsecure: true}.Client(2 * time.Second)
	resp, err = c.Get(srv.URL)
	if err != nil {
		t.Fatalf("Get with an unreachable proxy set: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 2 {
		t.Errorf("server hits %d, want 2", hits.Load())
	}
}
