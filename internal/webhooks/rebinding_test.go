package webhooks

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DNS rebinding: a receiver's host name resolves to a public address when
// the endpoint is created (URLPolicy.Check lets it through) and to an
// internal one when a delivery dials it. API.md: "The check runs again on
// the address each delivery dials, after DNS, so a name that later
// resolves inside (DNS rebinding) is refused at send time."
//
// The resolution a delivery does is the one of the Client's net.Dialer,
// whose Resolver is nil, so net.DefaultResolver: the test replaces that
// with a Go resolver whose queries go to rebindingDNS, an in-memory DNS
// server that gives a name a public answer the first time and the
// internal one afterwards. The tests that do so are not parallel (the
// package's parallel tests start only after them, so no other test
// resolves meanwhile).

const rebindName = "rebind.example.com"

// rebindingDNS answers queries for rebindName: the first query of each
// type with first, every later one with then (a type with no address in
// the list gets an empty answer); any other name does not exist.
type rebindingDNS struct {
	first, then []netip.Addr

	mu    sync.Mutex
	asked map[uint16]int // queries for rebindName, by type
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
)

func newRebindingDNS(first, then []netip.Addr) *rebindingDNS {
	return &rebindingDNS{first: first, then: then, asked: map[uint16]int{}}
}

// resolver is a Go resolver that asks d (over an in-memory stream
// connection, so with DNS over TCP framing), whatever server
// /etc/resolv.conf names.
func (d *rebindingDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go d.serve(server)
		return client, nil
	}}
}

// queries is how many queries of type qtype were asked for rebindName.
func (d *rebindingDNS) queries(qtype uint16) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[qtype]
}

func (d *rebindingDNS) serve(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		answer := d.answer(q)
		if answer == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(answer)))
		if _, err := c.Write(append(out, answer...)); err != nil {
			return
		}
	}
}

// answer is the response to the query q; nil for a query it cannot read.
func (d *rebindingDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question: labels up to the root, then type and class.
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))

	flags := uint16(0x8000 | 0x0400 | 0x0080) // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(q[2:4]) & 0x0100
	var records []netip.Addr
	if name != rebindName {
		flags |= 3 // NXDOMAIN
	} else {
		d.mu.Lock()
		d.asked[qtype]++
		answers := d.then
		if d.asked[qtype] == 1 {
			answers = d.first
		}
		d.mu.Unlock()
		for _, a := range answers {
			if (qtype == dnsTypeA && a.Is4()) || (qtype == dnsTypeAAAA && a.Is6()) {
				records = append(records, a)
			}
		}
	}
	msg := append([]byte(nil), q[0:2]...) // the query's id
	msg = binary.BigEndian.AppendUint16(msg, flags)
	msg = binary.BigEndian.AppendUint16(msg, 1) // questions
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(records)))
	msg = binary.BigEndian.AppendUint16(msg, 0) // authority
	msg = binary.BigEndian.AppendUint16(msg, 0) // additional
	msg = append(msg, question...)
	for _, a := range records {
		msg = append(msg, 0xc0, 12) // the question's name
		msg = binary.BigEndian.AppendUint16(msg, qtype)
		msg = binary.BigEndian.AppendUint16(msg, 1) // IN
		msg = binary.BigEndian.AppendUint32(msg, 0) // TTL: nothing to cache
		raw := a.AsSlice()                          // 4 bytes for A, 16 for AAAA (also an IPv4-mapped one)
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(raw)))
		msg = append(msg, raw...)
	}
	return msg
}

// useDefaultResolver makes r net.DefaultResolver until t ends.
func useDefaultResolver(t *testing.T, r *net.Resolver) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = r
	t.Cleanup(func() { net.DefaultResolver = old })
}

// countingListener is a TCP listener that accepts (and at once closes)
// connections, reporting each one's remote address.
type countingListener struct {
	ln       net.Listener
	accepted chan string
}

func listenCounting(t *testing.T, address string) (*countingListener, error) {
	t.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	l := &countingListener{ln: ln, accepted: make(chan string, 64)}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted <- c.RemoteAddr().String()
			_ = c.Close()
		}
	}()
	return l, nil
}

func (l *countingListener) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// connections returns the remote addresses of the connections accepted
// so far (and not returned before). It connects itself and collects
// every connection accepted before its own: connections are accepted in
// the order they were made, so one the client made earlier cannot be
// missed, and nothing sleeps.
func (l *countingListener) connections(t *testing.T) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the listener %s: %v", l.ln.Addr(), err)
	}
	defer c.Close()
	mine := c.LocalAddr().String()
	var others []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case a := <-l.accepted:
			if a == mine {
				return others
			}
			others = append(others, a)
		case <-timeout:
			t.Fatalf("the listener %s did not accept the test's own connection", l.ln.Addr())
		}
	}
}

// The public answers of the first lookup.
var rebindPublic = addrs("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")

// rebindRows are the internal answers a rebinding name turns to; loopback
// says a dial that got through would reach the test's loopback listeners.
var rebindRows = []struct {
	name     string
	internal string
	loopback bool
}{
	{"loopback", "127.0.0.1", true},
	{"private 10/8", "10.0.0.7", false},
	{"private 192.168/16", "192.168.1.20", false},
	{"cloud metadata", "169.254.169.254", false},
	{"shared CGNAT (metadata of some clouds)", "100.100.100.200", false},
	{"IPv6 loopback", "::1", true},
	{"IPv4-mapped IPv6 loopback", "::ffff:127.0.0.1", true},
	{"IPv4-mapped IPv6 metadata", "::ffff:169.254.169.254", false},
	{"IPv6 unique local (AWS metadata)", "fd00:ec2::254", false},
}

// loopbackListeners listen on 127.0.0.1 and, when the machine has IPv6,
// on [::1] with the same port; the port is the URL's.
func loopbackListeners(t *testing.T) (int, []*countingListener) {
	t.Helper()
	for try := 0; try < 5; try++ {
		v4, err := listenCounting(t, "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen on 127.0.0.1: %v", err)
		}
		port := v4.port()
		v6, err := listenCounting(t, net.JoinHostPort("::1", strconv.Itoa(port)))
		if err == nil {
			return port, []*countingListener{v4, v6}
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Logf("no IPv6 loopback listener (%v): the ::1 row relies on the dial being refused", err)
			return port, []*countingListener{v4}
		}
		_ = v4.ln.Close() // the port is taken on ::1: another one
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return 0, nil
}

// TestRebindingRefusedAtSendTime: an endpoint's host passes the check at
// creation (it resolves to a public address), then resolves to an internal
// one. A delivery to it never connects: the dialer refuses the address it
// would dial, and the attempt is the documented failed one (retried on the
// schedule, like any connection error, with the error saying why and no
// HTTP status), while a listener on that address accepted nothing.
func TestRebindingRefusedAtSendTime(t *testing.T) {
	for _, row := range rebindRows {
		t.Run(row.name, func(t *testing.T) {
			internal := netip.MustParseAddr(row.internal)
			if _, bad := Blocked(internal); !bad {
				t.Fatalf("Blocked(%s) = false: the row is not an internal address", internal)
			}
			dns := newRebindingDNS(rebindPublic, []netip.Addr{internal})
			useDefaultResolver(t, dns.resolver())
			port, listeners := loopbackListeners(t)
			url := "https://" + rebindName + ":" + strconv.Itoa(port) + "/hooks"

			// At creation: the name resolves to public addresses only.
			policy := URLPolicy{}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := policy.Check(ctx, url); err != nil {
				t.Fatalf("Check(%s) while it resolves to %v = %v, want nil", url, rebindPublic, err)
			}
			if dns.queries(dnsTypeA) != 1 || dns.queries(dnsTypeAAAA) != 1 {
				t.Fatalf("the check asked A %d and AAAA %d times, want once each",
					dns.queries(dnsTypeA), dns.queries(dnsTypeAAAA))
			}

			// At send time: the name now resolves to the internal address.
			client := policy.Client(5 * time.Second)
			start := time.Now()
			res := Send(ctx, client, Message{
				URL: url, ID: "evt_rebind", Secrets: []string{NewSecret()},
				Body: []byte(`{"id":"evt_rebind"}`), At: time.Now(),
			})
			took := time.Since(start)
			want := Result{Verdict: Retry, Error: "refused: the host resolves to an internal address"}
			if res != want {
				t.Errorf("Send to %s resolving to %s = %+v, want %+v", url, internal, res, want)
			}
			// Refused before connecting, not after a connect that timed out.
			if took > 3*time.Second {
				t.Errorf("the refused attempt took %v", took)
			}
			// The dial looked the name up again (through the resolver the
			// test controls), so the refused address is the rebound one.
			if dns.queries(dnsTypeA) < 2 || dns.queries(dnsTypeAAAA) < 2 {
				t.Fatalf("after the send, A asked %d and AAAA %d times: the dial did not resolve through net.DefaultResolver",
					dns.queries(dnsTypeA), dns.queries(dnsTypeAAAA))
			}
			// The same through the client itself: the error is ErrBlockedAddress.
			resp, err := client.Post(url, "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("POST %s resolving to %s: HTTP %d, want a refused dial", url, internal, resp.StatusCode)
			}
			if !errors.Is(err, ErrBlockedAddress) {
				t.Errorf("POST %s resolving to %s: %v, want ErrBlockedAddress", url, internal, err)
			}
			for _, l := range listeners {
				if got := l.connections(t); len(got) != 0 {
					t.Errorf("the listener on %s accepted %d connections (from %v), want none", l.ln.Addr(), len(got), got)
				}
			}
		})
	}
}

// TestRebindingHarnessSeesAConnection is the control of the test above: the
// same rebinding name, with the policy's checks off (AllowInsecure, as in
// dev), reaches the loopback listener, so "accepted no connection" above
// means the dial was refused, not that it went elsewhere.
func TestRebindingHarnessSeesAConnection(t *testing.T) {
	for _, row := range rebindRows {
		if !row.loopback {
			continue // without the policy it would dial out of this machine
		}
		t.Run(row.name, func(t *testing.T) {
			internal := netip.MustParseAddr(row.internal)
			dns := newRebindingDNS(rebindPublic, []netip.Addr{internal})
			useDefaultResolver(t, dns.resolver())
			port, listeners := loopbackListeners(t)
			var target *countingListener
			for _, l := range listeners {
				if l.ln.Addr().(*net.TCPAddr).AddrPort().Addr().Is4() == internal.Unmap().Is4() {
					target = l
				}
			}
			if target == nil {
				t.Skipf("no listener for %s on this machine", internal)
			}
			url := "https://" + rebindName + ":" + strconv.Itoa(port) + "/hooks"
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := net.DefaultResolver.LookupNetIP(ctx, "ip", rebindName); err != nil {
				t.Fatalf("first lookup: %v", err) // the public answer, as the check at creation
			}
			policy := URLPolicy{AllowInsecure: true}
			res := Send(ctx, policy.Client(5*time.Second), Message{
				URL: url, ID: "evt_rebind", Secrets: []string{NewSecret()},
				Body: []byte(`{"id":"evt_rebind"}`), At: time.Now(),
			})
			if res.Verdict != Retry || res.Error == "refused: the host resolves to an internal address" {
				t.Errorf("Send without the policy = %+v, want a failed TLS handshake with the plain listener", res)
			}
			if got := target.connections(t); len(got) != 1 {
				t.Errorf("the listener on %s accepted %v, want the one connection of the delivery", target.ln.Addr(), got)
			}
		})
	}
}
