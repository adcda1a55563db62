package e2e

import (
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	smtpmail "github.com/payments-platform/payments/internal/mail"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// inbox is an in-process SMTP server that keeps every message it accepts.
type inbox struct {
	mu       sync.Mutex
	messages []inboxMessage
}

type inboxMessage struct {
	to, subject, text, html string
}

func (b *inbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &inboxSession{b: b}, nil }

type inboxSession struct {
	b  *inbox
	to []string
}

func (s *inboxSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *inboxSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *inboxSession) Reset()        { s.to = nil }
func (s *inboxSession) Logout() error { return nil }

// Data parses the message: its subject and its text and HTML parts.
func (s *inboxSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	m := inboxMessage{to: strings.Join(s.to, ","), subject: subject}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := parts.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		body, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			m.html = string(body)
		} else {
			m.text = string(body)
		}
	}
	s.b.mu.Lock()
	s.b.messages = append(s.b.messages, m)
	s.b.mu.Unlock()
	return nil
}

func (b *inbox) subjects(to string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		if m.to == to {
			out = append(out, m.subject)
		}
	}
	return out
}

func startInbox(t *testing.T) (*inbox, string) {
	t.Helper()
	b := &inbox{}
	s := gosmtp.NewServer(b)
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return b, l.Addr().String()
}

// The emails of a whole story through a real SMTP conversation: a
// payment, a partial refund, and a dispute the merchant answers and wins.
// Each party gets each letter meant for it exactly once, with the amounts
// in the currency's units.
func TestEmailsOfAPaymentRefundAndDisputeOverSMTP(t *testing.T) {
	t.Parallel()
	box, addr := startInbox(t)
	e := newEnv(t, withMailer(&smtpmail.SMTP{Addr: addr}))
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)

	p := e.create(t, c, pay(m, 12345, "USD", "pm_card_visa"))
	wantStatus(t, p, "PAYMENT_STATUS_SUCCEEDED")
	e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 2345}).refund(t)
	d := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}).dispute(t)
	sub := e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "submit": true,
		"evidence": map[string]any{"explanation": "Delivered.", "shipping_tracking_number": "1Z1"}}).dispute(t)
	if sub.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_UNDER_REVIEW {
		t.Fatalf("evidence: %v", sub)
	}
	e.post(t, adm.Token, procResolveDispute, map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_WON"}).dispute(t)

	// Each registration mailed its verification link too.
	want := map[string][]string{
		m.Email: {"Verify your email address", "Payment received: 123.45 USD", "Refund started: 23.45 USD", "Refund completed: 23.45 USD",
			"Dispute opened: 100.00 USD", "Dispute evidence submitted", "Dispute decided: the merchant won"},
		c.Email: {"Verify your email address", "Payment confirmation: 123.45 USD", "Refund on its way: 23.45 USD", "Refund completed: 23.45 USD",
			"Dispute opened: 100.00 USD", "Dispute evidence submitted", "Dispute decided: the merchant won"},
	}
	deadline := time.Now().Add(webhookWaitDeadline)
	for {
		done := true
		for to, subjects := range want {
			got := box.subjects(to)
			slices.Sort(got)
			w := slices.Clone(subjects)
			slices.Sort(w)
			done = done && slices.Equal(got, w)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("merchant got %q\ncustomer got %q\nwant %q", box.subjects(m.Email), box.subjects(c.Email), want)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	for _, msg := range box.messages {
		if msg.subject == "Verify your email address" {
			if !strings.Contains(msg.text, "vfy_") || strings.Contains(msg.text, "email preferences (") {
				t.Fatalf("verification letter to %s: %q", msg.to, msg.text)
			}
			continue
		}
		if msg.text == "" || !strings.Contains(msg.html, "<html") || !strings.Contains(msg.text, "USD") {
			t.Fatalf("message %q to %s: text %q html %q", msg.subject, msg.to, msg.text, msg.html)
		}
	}
}
