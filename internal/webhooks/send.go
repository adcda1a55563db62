package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Verdict is what an attempt's outcome means for the delivery.
type Verdict int

const (
	// Succeeded: the receiver answered 2xx.
	Succeeded Verdict = iota
	// Retry: a timeout, a connection error, 3xx, 408, 409, 429 or 5xx;
	// the next attempt follows the schedule.
	Retry
	// Stop: another 4xx, which a retry would get again: the delivery
	// failed.
	Stop
	// Gone: 410, the receiver asks never to be called again: the delivery
	// failed and the endpoint is disabled.
	Gone
)

// String names a verdict.
func (v Verdict) String() string {
	switch v {
	case Succeeded:
		return "succeeded"
	case Retry:
		return "retry"
	case Stop:
		return "stop"
	case Gone:
		return "gone"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Judge is the verdict on an HTTP status.
func Judge(status int) Verdict {
	switch {
	case status >= 200 && status < 300:
		return Succeeded
	case status == http.StatusGone:
		return Gone
	case status == http.StatusRequestTimeout, status == http.StatusConflict, status == http.StatusTooManyRequests,
		status >= 500, status >= 300 && status < 400, status < 200:
		return Retry
	}
	return Stop
}

// MaxStoredBody is how much of a receiver's answer is kept.
const MaxStoredBody = 1024

// Message is one POST of an event to an endpoint.
type Message struct {
	URL string
	// ID is the webhook-id: the event's id, the same on every attempt and
	// redelivery, so receivers can drop duplicates.
	ID string
	// Secrets sign the message, current first.
	Secrets []string
	Body    []byte
	// At is the webhook-timestamp.
	At time.Time
}

// Result is an attempt's outcome.
type Result struct {
	Verdict Verdict
	// Status is the receiver's HTTP status; 0 when none came.
	Status int
	// Error says why an attempt did not succeed, in the platform's words:
	// never the receiver's body.
	Error string
	// Body is the start of the receiver's answer (at most MaxStoredBody
	// bytes, valid UTF-8), for operators.
	Body string
}

// Send makes one attempt with client (URLPolicy.Client).
func Send(ctx context.Context, client *http.Client, m Message) Result {
	sig, err := SignatureHeader(m.Secrets, m.ID, m.At, m.Body)
	if err != nil || len(m.Secrets) == 0 {
		return Result{Verdict: Stop, Error: "the endpoint's signing secret is unusable"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{Verdict: Stop, Error: "the endpoint's url is unusable"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payments-webhooks/1")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(m.At.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := client.Do(req)
	if err != nil {
		return Result{Verdict: Retry, Error: describe(err)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, MaxStoredBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	res := Result{Verdict: Judge(resp.StatusCode), Status: resp.StatusCode, Body: validUTF8(head)}
	switch res.Verdict {
	case Succeeded:
	case Retry:
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			res.Error = fmt.Sprintf("HTTP %d: redirects are not followed", resp.StatusCode)
		} else {
			res.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
	case Gone:
		res.Error = "HTTP 410: the endpoint is gone and was disabled"
	case Stop:
		res.Error = fmt.Sprintf("HTTP %d: not retried", resp.StatusCode)
	}
	return res
}

// describe names a transport error without echoing anything the receiver
// sent.
func describe(err error) string {
	var dns *net.DNSError
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return "refused: the host resolves to an internal address"
	case errors.As(err, &dns):
		return "the host does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	case errors.As(err, &certErr):
		return "TLS certificate not valid for the host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	return "connection failed"
}

// validUTF8 is b with invalid UTF-8 (a rune cut at the end) dropped.
func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "")
}
