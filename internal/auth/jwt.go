package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signingMethod is pinned: tokens with any other alg (none, RS256 with an
// HMAC key, ...) are refused before their signature is looked at.
var signingMethod = jwt.SigningMethodHS256

// accessTokenType marks access tokens in the JWT header (RFC 9068), so that
// no other JWT this key might ever sign is accepted as one.
const accessTokenType = "at+jwt"

// Claims are the access token's claims.
type Claims struct {
	jwt.RegisteredClaims
	// Role is the account's role when the token was issued.
	Role string `json:"role"`
}

// Principal is who an access token or API key speaks for.
type Principal struct {
	AccountID string
	Role      string
	// APIKeyID is set when the caller used a merchant API key.
	APIKeyID string
}

// KeyID is the key id (the JWT header's kid) of a signing key: the first 16
// hex digits of its SHA-256. It names a key without revealing it: the hash of
// a random 32-byte key cannot be inverted, and a weak key can be guessed from
// any token's signature already.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// Tokens issues and verifies access tokens.
type Tokens struct {
	key []byte
	kid string
	// keys are the verification keys by kid: the signing key and the
	// previous ones.
	keys     map[string][]byte
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewTokens returns a token service that signs with key and verifies tokens
// of key and of the previous keys, chosen by the token's kid. Previous keys
// are for rotations: move the old key from JWT_SIGNING_KEY to
// JWT_SIGNING_KEYS and tokens signed before stay valid until they expire
// (an access token's TTL later, drop it). Previous keys never sign; empty
// ones are ignored. now may be nil (time.Now).
func NewTokens(key []byte, previous [][]byte, issuer, audience string, ttl time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	t := &Tokens{key: key, kid: KeyID(key), keys: map[string][]byte{}, issuer: issuer, audience: audience, ttl: ttl, now: now}
	for _, k := range previous {
		if len(k) > 0 {
			t.keys[KeyID(k)] = k
		}
	}
	// Set last: the signing key wins should a previous key repeat it.
	t.keys[t.kid] = key
	return t
}

// Issue signs an access token for the account.
func (t *Tokens) Issue(accountID, role string) (token string, expiresAt time.Time, err error) {
	now := t.now().UTC().Truncate(time.Second)
	expiresAt = now.Add(t.ttl)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   accountID,
			Audience:  jwt.ClaimStrings{t.audience},
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		Role: role,
	}
	tok := jwt.NewWithClaims(signingMethod, claims)
	tok.Header["typ"] = accessTokenType
	tok.Header["kid"] = t.kid
	token, err = tok.SignedString(t.key)
	return token, expiresAt, err
}

// ErrInvalidToken is returned for every token that must not be accepted; the
// cause is wrapped for logs only.
var ErrInvalidToken = errors.New("invalid access token")

// Verify checks signature, algorithm, type, key id, issuer, audience,
// expiry, issued-at and subject, and returns the principal.
//
// A token without a kid, or whose kid is none of the keys, is refused. Tokens
// issued before key ids existed have none; they are not verified with the
// signing key as a courtesy, because access tokens live minutes and clients
// recover with their refresh token, while a kid-less path kept for them would
// stay open for good.
func (t *Tokens) Verify(token string) (Principal, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		jwt.WithIssuer(t.issuer),
		jwt.WithAudience(t.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
		jwt.WithLeeway(5*time.Second),
	)
	var claims Claims
	parsed, err := parser.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, accessTokenType) {
			return nil, fmt.Errorf("token type %q is not an access token", typ)
		}
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %.32q", kid)
		}
		return key, nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !parsed.Valid {
		return Principal{}, ErrInvalidToken
	}
	if claims.IssuedAt == nil {
		return Principal{}, fmt.Errorf("%w: iat missing", ErrInvalidToken)
	}
	if !strings.HasPrefix(claims.Subject, "acct_") {
		return Principal{}, fmt.Errorf("%w: bad subject", ErrInvalidToken)
	}
	switch claims.Role {
	case "merchant", "customer", "admin":
	default:
		return Principal{}, fmt.Errorf("%w: bad role", ErrInvalidToken)
	}
	return Principal{AccountID: claims.Subject, Role: claims.Role}, nil
}
