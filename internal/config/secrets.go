package config

import (
	"math"
	"strings"
)

// generateKeyHint says how to make a secret that passes weakSecret.
const generateKeyHint = "generate one with `openssl rand -base64 32`"

// webhookSecretHint says where a webhook signing secret comes from.
const webhookSecretHint = "use the endpoint's signing secret from Stripe (whsec_...), or for the sandbox `whsec_` followed by the output of `openssl rand -base64 32`"

// minSecretBits is the least entropy, as estimated by secretBits, that a
// signing secret must show: an HMAC key weaker than 128 bits can be guessed
// offline from one signed token or event.
const minSecretBits = 128

// minDistinctChars refuses keys made of a handful of characters; random keys
// of 32 characters or more almost never have fewer than 10 distinct ones,
// whatever their alphabet (hex included).
const minDistinctChars = 10

// maxRun is the longest run of one character, or of consecutive ones
// ("12345678", "abcdefgh"), a key may hold; a longer run is typed, not
// generated.
const maxRun = 7

// knownPlaceholders are example secrets that appear, or once appeared, in the
// repository's docker-compose.yml, deploy/ and README: copied into a real
// deployment they are public knowledge. The repository's test
// (TestRepositoryExampleSecretsAreRefused) fails when an example is added that
// config does not refuse.
var knownPlaceholders = []string{
	// docker-compose.yml and deploy/k8s before the keys had to be random.
	"change-me-to-at-least-32-random-bytes-please",
	"change-me-to-at-least-32-random-bytes",
	"whsec_change-me-to-random-bytes",
	"whsec_change-me",
	// docker-compose.yml and deploy/k8s today.
	"REPLACE-ME-with-openssl-rand-base64-32",
	"whsec_REPLACE-ME-with-openssl-rand-base64-32",
	"whsec_REPLACE-ME-from-the-stripe-dashboard",
	// Stripe's documentation and common tutorials.
	"whsec_...",
	"whsec_test_secret",
	"whsec_1234567890abcdef",
}

// placeholderWords mark a value typed by a person as an example. They are
// matched case-insensitively anywhere in the value: at five letters or more
// they practically never occur in a random key (one in 10^8 for a base64 key
// of 32 bytes), so a real key is not refused by chance.
var placeholderWords = []string{
	"change", "example", "placeholder", "secret", "replace", "dummy", "sample",
	"password", "insecure", "default", "generate", "signing", "random", "openssl",
}

// placeholderTokens are shorter marks, matched only as whole words (between
// non-alphanumeric characters or the ends of the value): a random base64 key
// holds one of them as a whole word about once in two million draws.
var placeholderTokens = []string{"your", "todo", "fixme", "test", "xxxx", "1234", "here"}

// weakSecret reports why a signing secret is not fit for a deployment, or ""
// when it looks random. A whsec_ prefix (Stripe's webhook secrets) is not
// part of what is judged.
func weakSecret(value string) string {
	for _, p := range knownPlaceholders {
		if value == p {
			return "is an example value published in the repository"
		}
	}
	v := strings.TrimPrefix(value, "whsec_")
	lower := strings.ToLower(v)
	for _, w := range placeholderWords {
		if strings.Contains(lower, w) {
			return "looks like a placeholder (it contains \"" + w + "\")"
		}
	}
	for _, field := range strings.FieldsFunc(lower, func(r rune) bool { return !isAlnum(r) }) {
		for _, tok := range placeholderTokens {
			if field == tok {
				return "looks like a placeholder (it contains the word \"" + tok + "\")"
			}
		}
	}
	if n := distinct(v); n < minDistinctChars {
		return "has too few distinct characters to be random"
	}
	if longestRun(v) > maxRun {
		return "has a long run of repeated or consecutive characters"
	}
	if bits := secretBits(v); bits < minSecretBits {
		return "has too little entropy to be random"
	}
	return ""
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func distinct(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

// longestRun is the length of the longest stretch of one repeated character
// or of characters that each follow the previous one by +1 or -1.
func longestRun(s string) int {
	rs := []rune(s)
	best := min(len(rs), 1)
	same, up, down := 1, 1, 1
	for i := 1; i < len(rs); i++ {
		same, up, down = next(same, rs[i] == rs[i-1]), next(up, rs[i] == rs[i-1]+1), next(down, rs[i] == rs[i-1]-1)
		best = max(best, same, up, down)
	}
	return best
}

func next(n int, continues bool) int {
	if continues {
		return n + 1
	}
	return 1
}

// secretBits estimates the entropy of s in bits from its own character
// frequencies: the Shannon entropy per character times the length, with the
// Miller-Madow correction for the bias of estimating it from one short
// sample. It cannot see structure (a repeated word scores well), which is
// what the word and run checks are for; it catches keys drawn from few
// characters or dominated by a few. A random key of 32 characters scores
// about 150 (alphanumeric) and never below 128 in a million draws; 44
// characters of `openssl rand -base64 32` about 200.
func secretBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	if n == 0 {
		return 0
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h*float64(n) + float64(len(counts)-1)/(2*math.Ln2)
}
