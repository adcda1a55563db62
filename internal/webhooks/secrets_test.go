package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// swHeaders are the Standard Webhooks headers of a signed message.
func swHeaders(id string, at time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return h
}

// verifyWithLibrary checks sig with the reference implementation.
func verifyWithLibrary(t *testing.T, secret, id string, at time.Time, body []byte, sig string) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook(%q): %v", secret, err)
	}
	return wh.Verify(body, swHeaders(id, at, sig))
}

func TestNewSecretFormat(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		s := NewSecret()
		rest, ok := strings.CutPrefix(s, "whsec_")
		if !ok {
			t.Fatalf("NewSecret() = %q, want the whsec_ prefix", s)
		}
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			t.Fatalf("NewSecret() = %q: the part after whsec_ is not std base64: %v", s, err)
		}
		if len(key) != 32 {
			t.Fatalf("NewSecret() = %q encodes %d bytes, want 32", s, len(key))
		}
		if seen[s] {
			t.Fatalf("NewSecret() returned %q twice", s)
		}
		seen[s] = true
		// The reference library reads it.
		if _, err := standardwebhooks.NewWebhook(s); err != nil {
			t.Fatalf("standardwebhooks cannot read NewSecret() = %q: %v", s, err)
		}
	}
}

func TestSignatureMatchesLibraryAndHandComputedHMAC(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	at := time.Now()
	tests := []struct {
		name string
		id   string
		body []byte
	}{
		{"json", "evt_01J0ABCDEF", []byte(`{"type":"payment.succeeded","data":{"amount":1234}}`)},
		{"empty body", "evt_empty", []byte{}},
		{"non-ascii", "evt_ü", []byte(`{"name":"Zoë ☃"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := Signature(secret, tt.id, at, tt.body)
			if err != nil {
				t.Fatalf("Signature: %v", err)
			}
			if err := verifyWithLibrary(t, secret, tt.id, at, tt.body, sig); err != nil {
				t.Errorf("standardwebhooks Verify(%q) = %v, want nil", sig, err)
			}
			m := hmac.New(sha256.New, key)
			m.Write([]byte(tt.id + "." + strconv.FormatInt(at.Unix(), 10) + "." + string(tt.body)))
			want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			if sig != want {
				t.Errorf("Signature = %q, want hand-computed %q", sig, want)
			}
			// A different body does not verify.
			if err := verifyWithLibrary(t, secret, tt.id, at, append([]byte("x"), tt.body...), sig); err == nil {
				t.Errorf("signature verified for a tampered body")
			}
		})
	}
}

func TestSignatureUsesWholeSeconds(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	at := time.Unix(1_700_000_000, 0)
	a, err := Signature(secret, "evt_1", at, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Signature(secret, "evt_1", at.Add(999*time.Millisecond), []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("signatures differ within the same second: %q vs %q", a, b)
	}
	c, _ := Signature(secret, "evt_1", at.Add(time.Second), []byte("{}"))
	if a == c {
		t.Errorf("signatures of different seconds are equal: %q", a)
	}
}

func TestSignatureHeaderTwoSecrets(t *testing.T) {
	t.Parallel()
	current, previous, other := NewSecret(), NewSecret(), NewSecret()
	at := time.Now()
	id, body := "evt_rotation", []byte(`{"ok":true}`)
	header, err := SignatureHeader([]string{current, previous}, id, at, body)
	if err != nil {
		t.Fatalf("SignatureHeader: %v", err)
	}
	a, _ := Signature(current, id, at, body)
	b, _ := Signature(previous, id, at, body)
	if want := a + " " + b; header != want {
		t.Errorf("SignatureHeader = %q, want %q", header, want)
	}
	parts := strings.Split(header, " ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Errorf("SignatureHeader = %q, want two space-separated v1, signatures", header)
	}
	for name, s := range map[string]string{"current": current, "previous": previous} {
		if err := verifyWithLibrary(t, s, id, at, body, header); err != nil {
			t.Errorf("library cannot verify the header with the %s secret: %v", name, err)
		}
	}
	if err := verifyWithLibrary(t, other, id, at, body, header); err == nil {
		t.Errorf("library verified the header with an unrelated secret")
	}
}

func TestBadSecrets(t *testing.T) {
	t.Parallel()
	key23 := base64.StdEncoding.EncodeToString(make([]byte, 23))
	key24 := base64.StdEncoding.EncodeToString(make([]byte, 24))
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"no prefix", strings.TrimPrefix(NewSecret(), "whsec_"), false},
		{"wrong prefix", "whsk_" + key24, false},
		{"not base64", "whsec_not*base64!", false},
		{"url base64 alphabet", "whsec_" + strings.Repeat("-_", 16), false},
		{"23 bytes", "whsec_" + key23, false},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"24 bytes", "whsec_" + key24, true},
		{"new secret", NewSecret(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := Signature(tt.secret, "evt_1", time.Now(), []byte("{}"))
			if tt.ok && err != nil {
				t.Errorf("Signature(%q) error = %v, want nil", tt.secret, err)
			}
			if !tt.ok && err == nil {
				t.Errorf("Signature(%q) = %q, want an error", tt.secret, sig)
			}
			_, herr := SignatureHeader([]string{NewSecret(), tt.secret}, "evt_1", time.Now(), []byte("{}"))
			if (herr == nil) != tt.ok {
				t.Errorf("SignatureHeader with %q: error = %v, want error: %v", tt.secret, herr, !tt.ok)
			}
		})
	}
}

func mustSealer(t *testing.T, key string) *Sealer {
	t.Helper()
	s, err := NewSealer([]byte(key))
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, "the jwt signing key")
	for _, plain := range []string{NewSecret(), "", "ünïcödé ☃", strings.Repeat("x", 4096)} {
		sealed := s.Seal(plain)
		if !strings.HasPrefix(sealed, "v1:") {
			t.Errorf("Seal = %q, want the v1: prefix", sealed)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Errorf("Seal(%q) contains the plain text", plain)
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatalf("Open(Seal(%q)): %v", plain, err)
		}
		if got != plain {
			t.Errorf("Open(Seal(%q)) = %q", plain, got)
		}
		// A second sealer from the same key opens it too.
		got, err = mustSealer(t, "the jwt signing key").Open(sealed)
		if err != nil || got != plain {
			t.Errorf("another sealer of the same key: Open = %q, %v", got, err)
		}
	}
}

func TestSealTwiceDiffers(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, "k")
	plain := NewSecret()
	a, b := s.Seal(plain), s.Seal(plain)
	if a == b {
		t.Errorf("two seals of the same plain are equal: %q", a)
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, "key one")
	other := mustSealer(t, "key two")
	sealed := s.Seal("whsec_secret")
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil {
		t.Fatalf("sealed value is not v1: + raw std base64: %v", err)
	}
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return "v1:" + base64.RawStdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name   string
		sealer *Sealer
		sealed string
	}{
		{"other key", other, sealed},
		{"tampered last byte (tag)", s, flip(len(raw) - 1)},
		{"tampered first ciphertext byte", s, flip(12)},
		{"tampered nonce", s, flip(0)},
		{"truncated", s, "v1:" + base64.RawStdEncoding.EncodeToString(raw[:len(raw)-1])},
		{"wrong version", s, "v2:" + strings.TrimPrefix(sealed, "v1:")},
		{"no version", s, strings.TrimPrefix(sealed, "v1:")},
		{"not base64", s, "v1:***"},
		{"too short", s, "v1:AAAA"},
		{"empty", s, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := tt.sealer.Open(tt.sealed); err == nil {
				t.Errorf("Open(%q) = %q, want an error", tt.sealed, got)
			}
		})
	}
}

func TestNewSealerNoKey(t *testing.T) {
	t.Parallel()
	for _, key := range [][]byte{nil, {}} {
		if s, err := NewSealer(key); err == nil || s != nil {
			t.Errorf("NewSealer(%v) = %v, %v; want nil and an error", key, s, err)
		}
	}
}
