package webhooks

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   Verdict
	}{
		{100, Retry},
		{200, Succeeded},
		{201, Succeeded},
		{204, Succeeded},
		{299, Succeeded},
		{301, Retry},
		{302, Retry},
		{307, Retry},
		{400, Stop},
		{401, Stop},
		{403, Stop},
		{404, Stop},
		{408, Retry},
		{409, Retry},
		{410, Gone},
		{422, Stop},
		{429, Retry},
		{500, Retry},
		{502, Retry},
		{503, Retry},
	}
	for _, tt := range tests {
		if got := Judge(tt.status); got != tt.want {
			t.Errorf("Judge(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	t.Parallel()
	for v, want := range map[Verdict]string{Succeeded: "succeeded", Retry: "retry", Stop: "stop", Gone: "gone", Verdict(9): "verdict(9)"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), got, want)
		}
	}
}

// received is what a test receiver saw of one request.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is an httptest server answering status and body, recording
// the requests it gets.
func receiver(t *testing.T, status int, answer []byte) (url string, got func() []received) {
	t.Helper()
	var mu sync.Mutex
	var reqs []received
	srv, _ := hitServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, received{r.Method, r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(answer)
	})
	return srv.URL + "/hook", func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), reqs...)
	}
}

func testClient() *http.Client { return URLPolicy{AllowInsecure: true}.Client(2 * time.Second) }

func TestSendRequest(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, http.StatusNoContent, nil)
	secret, previous := NewSecret(), NewSecret()
	body := []byte("{\"type\":\"payment.succeeded\",\"name\":\"Zoë\",\"nl\":\"a\\nb\"}\n  ")
	at := time.Now()
	m := Message{URL: url, ID: "evt_01HZX", Secrets: []string{secret, previous}, Body: body, At: at}
	res := Send(context.Background(), testClient(), m)
	if res.Verdict != Succeeded || res.Status != http.StatusNoContent || res.Error != "" {
		t.Fatalf("Send = %+v, want Succeeded 204 without error", res)
	}
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.method)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if id := r.header.Get("webhook-id"); id != m.ID {
		t.Errorf("webhook-id = %q, want %q", id, m.ID)
	}
	if ts := r.header.Get("webhook-timestamp"); ts != strconv.FormatInt(at.Unix(), 10) {
		t.Errorf("webhook-timestamp = %q, want %d", ts, at.Unix())
	}
	if !bytes.Equal(r.body, body) {
		t.Errorf("body = %q, want %q", r.body, body)
	}
	for _, s := range []string{secret, previous} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("standardwebhooks Verify of the received request: %v (signature %q)", err, r.header.Get("webhook-signature"))
		}
	}
	wh, _ := standardwebhooks.NewWebhook(NewSecret())
	if err := wh.Verify(r.body, r.header); err == nil {
		t.Errorf("received request verified with an unrelated secret")
	}
}

const secretMarker = "SECRET-MARKER-7f3a9c"

func TestSendVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  int
		verdict Verdict
		errPart string // "" means Error must be empty
	}{
		{200, Succeeded, ""},
		{201, Succeeded, ""},
		{204, Succeeded, ""},
		{299, Succeeded, ""},
		{400, Stop, "HTTP 400"},
		{401, Stop, "HTTP 401"},
		{403, Stop, "HTTP 403"},
		{404, Stop, "HTTP 404"},
		{408, Retry, "HTTP 408"},
		{409, Retry, "HTTP 409"},
		{410, Gone, "HTTP 410"},
		{422, Stop, "HTTP 422"},
		{429, Retry, "HTTP 429"},
		{500, Retry, "HTTP 500"},
		{502, Retry, "HTTP 502"},
		{503, Retry, "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			answer := []byte(`{"error":"` + secretMarker + `"}`)
			if tt.status == http.StatusNoContent {
				answer = nil
			}
			url, got := receiver(t, tt.status, answer)
			res := Send(context.Background(), testClient(), Message{URL: url, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
			if res.Verdict != tt.verdict || res.Status != tt.status {
				t.Errorf("Send = %+v, want verdict %v status %d", res, tt.verdict, tt.status)
			}
			if tt.errPart == "" && res.Error != "" {
				t.Errorf("Error = %q, want empty", res.Error)
			}
			if tt.errPart != "" && !strings.Contains(res.Error, tt.errPart) {
				t.Errorf("Error = %q, want it to contain %q", res.Error, tt.errPart)
			}
			if strings.Contains(res.Error, secretMarker) {
				t.Errorf("Error %q contains the receiver's body", res.Error)
			}
			if answer != nil && res.Body != string(answer) {
				t.Errorf("Body = %q, want the receiver's answer %q", res.Body, answer)
			}
			if len(got()) != 1 {
				t.Errorf("receiver got %d requests, want 1", len(got()))
			}
		})
	}
}

func TestSendGone(t *testing.T) {
	t.Parallel()
	url, _ := receiver(t, http.StatusGone, []byte("bye "+secretMarker))
	res := Send(context.Background(), testClient(), Message{URL: url, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Gone || res.Status != 410 {
		t.Errorf("Send = %+v, want Gone 410", res)
	}
	if !strings.Contains(res.Error, "gone") || strings.Contains(res.Error, secretMarker) {
		t.Errorf("Error = %q", res.Error)
	}
}

func TestSendBodyTruncatedToValidUTF8(t *testing.T) {
	t.Parallel()
	// 1023 ASCII bytes then "é" (2 bytes): byte 1024 cuts the rune.
	cut := append(bytes.Repeat([]byte("a"), MaxStoredBody-1), []byte(strings.Repeat("é", 2000))...)
	tests := []struct {
		name   string
		answer []byte
		want   string
	}{
		{"5000 ascii bytes", bytes.Repeat([]byte("x"), 5000), strings.Repeat("x", MaxStoredBody)},
		{"rune cut at 1024", cut, strings.Repeat("a", MaxStoredBody-1)},
		{"all 3-byte runes", []byte(strings.Repeat("€", 2000)), strings.Repeat("€", MaxStoredBody/3)},
		{"short", []byte("short answer"), "short answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, _ := receiver(t, http.StatusInternalServerError, tt.answer)
			res := Send(context.Background(), testClient(), Message{URL: url, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
			if len(res.Body) > MaxStoredBody {
				t.Errorf("len(Body) = %d, want at most %d", len(res.Body), MaxStoredBody)
			}
			if !utf8.ValidString(res.Body) {
				t.Errorf("Body is not valid UTF-8: %q", res.Body[max(0, len(res.Body)-8):])
			}
			if res.Body != tt.want {
				t.Errorf("Body = %d bytes ending %q, want %d bytes ending %q", len(res.Body), res.Body[max(0, len(res.Body)-8):], len(tt.want), tt.want[max(0, len(tt.want)-8):])
			}
		})
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			target, targetHits := hitServer(t, nil)
			srv, hits := hitServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", target.URL+"/stolen")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, secretMarker)
			})
			res := Send(context.Background(), testClient(), Message{URL: srv.URL, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
			if res.Verdict != Retry || res.Status != status {
				t.Errorf("Send = %+v, want Retry %d", res, status)
			}
			if !strings.Contains(res.Error, "redirect") {
				t.Errorf("Error = %q, want it to mention redirects", res.Error)
			}
			if strings.Contains(res.Error, secretMarker) || strings.Contains(res.Error, target.URL) {
				t.Errorf("Error = %q echoes the receiver's answer", res.Error)
			}
			if hits.Load() != 1 || targetHits.Load() != 0 {
				t.Errorf("hits: endpoint %d, redirect target %d; want 1, 0", hits.Load(), targetHits.Load())
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := hitServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	client := URLPolicy{AllowInsecure: true}.Client(200 * time.Millisecond)
	start := time.Now()
	res := Send(context.Background(), client, Message{URL: srv.URL, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Retry || res.Status != 0 || res.Error != "timed out" {
		t.Errorf("Send = %+v, want Retry, status 0, Error \"timed out\"", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 200ms timeout", d)
	}
}

func TestSendContextDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := hitServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := Send(ctx, testClient(), Message{URL: srv.URL, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Retry || res.Error != "timed out" {
		t.Errorf("Send = %+v, want Retry \"timed out\"", res)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := Send(context.Background(), testClient(), Message{URL: "http://" + addr + "/hook", ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Retry || res.Status != 0 || res.Error != "connection refused" {
		t.Errorf("Send = %+v, want Retry, status 0, Error \"connection refused\"", res)
	}
}

func TestSendBlockedAddress(t *testing.T) {
	t.Parallel()
	srv, hits := hitServer(t, nil)
	res := Send(context.Background(), URLPolicy{}.Client(2*time.Second), Message{URL: srv.URL, ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Retry || !strings.Contains(res.Error, "internal address") {
		t.Errorf("Send = %+v, want Retry refused for an internal address", res)
	}
	if hits.Load() != 0 {
		t.Errorf("server got %d requests, want 0", hits.Load())
	}
}

func TestSendBadSecretStops(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, http.StatusOK, nil)
	for _, secrets := range [][]string{{"not-a-secret"}, {NewSecret(), "whsec_short"}} {
		res := Send(context.Background(), testClient(), Message{URL: url, ID: "evt_1", Secrets: secrets, Body: []byte("{}"), At: time.Now()})
		if res.Verdict != Stop || res.Error == "" || res.Status != 0 {
			t.Errorf("Send with secrets %q = %+v, want Stop with an error", secrets, res)
		}
	}
	if n := len(got()); n != 0 {
		t.Errorf("receiver got %d requests, want 0 (nothing sent unsigned)", n)
	}
}

func TestSendBadURLStops(t *testing.T) {
	t.Parallel()
	res := Send(context.Background(), testClient(), Message{URL: "http://[::1", ID: "evt_1", Secrets: []string{NewSecret()}, Body: []byte("{}"), At: time.Now()})
	if res.Verdict != Stop || res.Error == "" {
		t.Errorf("Send to a malformed URL = %+v, want Stop with an error", res)
	}
}
