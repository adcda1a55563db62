package devserver

import (
	"bytes"
	"strings"
	"sync"
)

// maxLineLen caps one remembered line so a child printing without newlines
// cannot grow the buffer without bound.
const maxLineLen = 2048

// tailWriter is an io.Writer that remembers the last n lines written to it.
// It is safe for concurrent use.
type tailWriter struct {
	mu      sync.Mutex
	n       int
	lines   []string
	partial []byte
}

func newTailWriter(n int) *tailWriter { return &tailWriter{n: n} }

// Write implements io.Writer; it never fails.
func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.appendPartial(p)
			break
		}
		t.appendPartial(p[:i])
		t.push(strings.TrimRight(string(t.partial), "\r"))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tailWriter) appendPartial(p []byte) {
	if room := maxLineLen - len(t.partial); room > 0 {
		t.partial = append(t.partial, p[:min(len(p), room)]...)
	}
}

func (t *tailWriter) push(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.n:]...)
	}
}

// String returns the remembered lines, including an unterminated last one.
func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.partial))
	}
	return strings.Join(lines, "\n")
}

// StringOr is String, or def when nothing was written.
func (t *tailWriter) StringOr(def string) string {
	if s := t.String(); strings.TrimSpace(s) != "" {
		return s
	}
	return def
}
