package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// URLPolicy decides where the platform may send webhooks. By default only
// https URLs whose host resolves to public addresses: never loopback,
// private (RFC 1918, unique local), link-local (where cloud metadata
// services live, 169.254.169.254 and fd00:ec2::254), multicast,
// unspecified, shared (CGNAT, 100.64.0.0/10, where some clouds put their
// metadata), benchmarking or reserved ranges. The check runs when an
// endpoint is created or changed, and again on the address each delivery
// dials (so a name that resolves elsewhere later, DNS rebinding, is caught
// at send time).
type URLPolicy struct {
	// AllowInsecure allows http URLs and every address (paymentsd dev and
	// tests, whose receivers listen on 127.0.0.1).
	AllowInsecure bool
	// Resolver looks names up; net.DefaultResolver when nil.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// URLError says why a URL is refused, in words for the API's caller.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

func refuse(format string, args ...any) error {
	return &URLError{Reason: fmt.Sprintf(format, args...)}
}

// blockedPrefixes are the ranges netip's predicates do not name.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (maps onto IPv4 inside)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated; carries an IPv4 inside)
	netip.MustParsePrefix("2002::/16"),       // 6to4 (carries an IPv4 inside)
}

// Blocked reports whether a delivery must never reach addr, and why.
func Blocked(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "an invalid address", true
	case addr.IsLoopback():
		return "a loopback address", true
	case addr.IsPrivate():
		return "a private address", true
	case addr.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services live there)", true
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "a multicast address", true
	case addr.IsUnspecified():
		return "an unspecified address", true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return "a reserved or internal address", true
		}
	}
	return "", false
}

// Check refuses a URL deliveries must not go to (a *URLError): what
// CheckURL refuses, and a host name that does not resolve or resolves to
// an internal address. Endpoints are checked so when they are created or
// changed.
func (p URLPolicy) Check(ctx context.Context, raw string) error {
	host, err := p.checkURL(raw)
	if err != nil || host == "" {
		return err
	}
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return refuse("url host %s does not resolve", host)
	}
	for _, a := range addrs {
		if why, bad := Blocked(a); bad {
			return refuse("url host %s resolves to %s", host, why)
		}
	}
	return nil
}

// CheckURL refuses (a *URLError) what the URL itself says deliveries must
// not go to, without DNS: at send time the Client's dialer checks the
// address it actually dials, and a name that does not resolve then is a
// connection error, retried like any other.
func (p URLPolicy) CheckURL(raw string) error {
	_, err := p.checkURL(raw)
	return err
}

// checkURL checks the URL's form, scheme and host; host is the name left
// to resolve ("" when there is none: a literal address, or any host when
// insecure URLs are allowed).
func (p URLPolicy) checkURL(raw string) (host string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !u.IsAbs() {
		return "", refuse("url must be an absolute https URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !p.AllowInsecure {
			return "", refuse("url must use https")
		}
	default:
		return "", refuse("url must use https")
	}
	if u.User != nil {
		return "", refuse("url must not carry credentials")
	}
	if u.Fragment != "" {
		return "", refuse("url must not have a fragment")
	}
	host = u.Hostname()
	if host == "" {
		return "", refuse("url has no host")
	}
	if p.AllowInsecure {
		return "", nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") || strings.HasSuffix(lower, ".internal") ||
		strings.HasSuffix(lower, ".local") {
		return "", refuse("url points at a local or internal host name (%s)", host)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why, bad := Blocked(addr); bad {
			return "", refuse("url points at %s", why)
		}
		return "", nil
	}
	return host, nil
}

func (p URLPolicy) resolver() interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
} {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// ErrBlockedAddress is the dial error of a delivery to a refused address.
var ErrBlockedAddress = errors.New("refused to connect to an internal address")

// Client is the HTTP client of deliveries: it dials only addresses the
// policy allows (checked on the address actually dialed, after DNS), uses
// no proxy from the environment, never follows redirects (a 3xx is a
// failed attempt), and gives up after timeout.
func (p URLPolicy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !p.AllowInsecure {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return ErrBlockedAddress
			}
			if _, bad := Blocked(ap.Addr()); bad {
				return ErrBlockedAddress
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
