// Package mail sends the platform's emails: MIME messages with a text and
// an HTML part, over SMTP (SMTP_URL, STARTTLS and AUTH when given) or, in
// dev without SMTP_URL, into .eml files a developer opens with any mail
// client.
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Message is one email.
type Message struct {
	From, To  string
	Subject   string
	Text      string
	HTML      string
	MessageID string
	Date      time.Time
}

// Bytes is the message in RFC 5322 form: multipart/alternative with the
// text part first, both quoted-printable.
func (m Message) Bytes() ([]byte, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, content string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		pw, err := w.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	for name, v := range map[string]string{"From": m.From, "To": m.To, "Subject": m.Subject, "Message-ID": m.MessageID} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("mail header %s holds a line break", name)
		}
	}
	var out bytes.Buffer
	for _, h := range [][2]string{
		{"From", m.From},
		{"To", m.To},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", m.Date.UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + m.MessageID + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative; boundary=" + w.Boundary()},
	} {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("mail header %s holds a line break", h[0])
		}
		fmt.Fprintf(&out, "%s: %s\r\n", h[0], h[1])
	}
	out.WriteString("\r\n")
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// Mailer sends messages. Send reports where a message went (a file's path,
// the server's address) for the logs. An error means the message was not
// accepted: nothing was sent, and it may be sent again.
type Mailer interface {
	Send(ctx context.Context, m Message) (string, error)
}

// New is the mailer of SMTP_URL, or a Dir under dataDir/mail when it is
// empty:
//
//	smtp://user:password@host:587  (STARTTLS when the server offers it)
//	smtp://host:25?starttls=required
//	smtps://user:password@host:465 (TLS from the start)
func New(smtpURL, dataDir string) (Mailer, error) {
	if strings.TrimSpace(smtpURL) == "" {
		return Dir{Path: filepath.Join(dataDir, "mail")}, nil
	}
	u, err := url.Parse(smtpURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("SMTP_URL must be smtp://[user:password@]host:port or smtps://...")
	}
	s := &SMTP{Addr: u.Host, Implicit: u.Scheme == "smtps", RequireTLS: u.Query().Get("starttls") == "required"}
	switch u.Scheme {
	case "smtp", "smtps":
	default:
		return nil, fmt.Errorf("SMTP_URL: unknown scheme %q (smtp or smtps)", u.Scheme)
	}
	if u.Port() == "" {
		port := "25"
		if s.Implicit {
			port = "465"
		}
		s.Addr = net.JoinHostPort(u.Hostname(), port)
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// Dir writes each message as an .eml file in Path.
type Dir struct{ Path string }

// Send writes the message; the detail is the file's path.
func (d Dir) Send(_ context.Context, m Message) (string, error) {
	raw, err := m.Bytes()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return "", err
	}
	name := m.Date.UTC().Format("20060102T150405Z") + "-" + safeName(m.MessageID) + ".eml"
	path := filepath.Join(d.Path, name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// SMTP sends through a mail server.
type SMTP struct {
	Addr               string
	Username, Password string
	// Implicit is TLS from the first byte (smtps, port 465).
	Implicit bool
	// RequireTLS refuses a server that does not offer STARTTLS.
	RequireTLS bool
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
	// Hostname is what the client says in EHLO; "localhost" when empty.
	Hostname string
}

// Send delivers the message to the server; the detail is its address.
func (s *SMTP) Send(ctx context.Context, m Message) (string, error) {
	raw, err := m.Bytes()
	if err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return "", fmt.Errorf("smtp address %q: %w", s.Addr, err)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tlsConf = s.TLSConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = host
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	var conn net.Conn
	if s.Implicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tlsConf}).DialContext(ctx, "tcp", s.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.Addr)
	}
	if err != nil {
		return "", fmt.Errorf("smtp connect %s: %w", s.Addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer c.Close()
	hello := s.Hostname
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return "", fmt.Errorf("smtp hello: %w", err)
	}
	if !s.Implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return "", fmt.Errorf("smtp starttls: %w", err)
			}
		} else if s.RequireTLS {
			return "", errors.New("smtp: the server does not offer STARTTLS, which SMTP_URL requires")
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return "", fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(address(m.From)); err != nil {
		return "", fmt.Errorf("smtp mail from: %w", err)
	}
	if err := c.Rcpt(address(m.To)); err != nil {
		return "", fmt.Errorf("smtp rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return "", fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return "", fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("smtp data: %w", err)
	}
	// The server accepted the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return s.Addr, nil
}

// address is the bare address of "Name <addr>" or "addr".
func address(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		return strings.TrimSuffix(s[i+1:], ">")
	}
	return s
}
