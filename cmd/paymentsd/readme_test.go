package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/devserver"
)

// readmeBlock is one ```sh block of README.md and the documented answer
// that follows it, if any: the ```json or ```text block after it and
// before the next ```sh block.
type readmeBlock struct {
	line   int    // where the block starts in README.md
	script string // the commands
	answer []string
}

// readmeSections are the sections of README.md whose ```sh blocks run, in
// order, as one session.
var readmeSections = map[string]bool{"## Walkthrough with curl": true, "## Commands": true, "## Routes on the API port": true}

// readmeWalkthrough reads the ```sh blocks of readmeSections with their
// documented answers. A block may be indented (in a list item): its
// fence's indentation is taken off its lines.
func readmeWalkthrough(t *testing.T) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	in, fence, indent, start := false, "", "", 0
	var body []string
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case strings.HasPrefix(line, "## "):
			in = readmeSections[line]
		case !in:
		case fence == "" && strings.HasPrefix(trimmed, "```"):
			fence, indent, start, body = strings.TrimPrefix(trimmed, "```"), line[:len(line)-len(trimmed)], i+1, nil
		case fence != "" && trimmed == "```":
			switch fence {
			case "sh":
				blocks = append(blocks, readmeBlock{line: start, script: strings.Join(body, "\n")})
			case "json", "text":
				if len(blocks) == 0 || blocks[len(blocks)-1].answer != nil {
					t.Fatalf("README.md:%d: an answer block that follows no ```sh block of its own", start)
				}
				blocks[len(blocks)-1].answer = body
			}
			fence = ""
		case fence != "":
			body = append(body, strings.TrimPrefix(line, indent))
		}
	}
	if len(blocks) < 20 {
		t.Fatalf("README.md: %d ```sh blocks in the walkthrough and the commands, want at least 20", len(blocks))
	}
	return blocks
}

// answerPattern turns a line of a documented answer into a regular
// expression: `...` and the spaces around it match anything, and spaces
// after a comma or a colon are optional (protojson adds one after a comma
// at random, so that nobody relies on its bytes); other characters match
// themselves.
func answerPattern(line string) *regexp.Regexp {
	var re strings.Builder
	for i, part := range strings.Split(strings.TrimSpace(line), "...") {
		if i > 0 {
			re.WriteString(`.*?`)
			part = strings.TrimLeft(part, " ")
		}
		if i < strings.Count(line, "...") {
			part = strings.TrimRight(part, " ")
		}
		prev := rune(0)
		for _, r := range part {
			switch {
			case r == ' ' && (prev == ',' || prev == ':' || prev == ' '):
			case r == ' ':
				re.WriteString(`\s+`)
			case r == ',' || r == ':':
				re.WriteString(regexp.QuoteMeta(string(r)) + `\s*`)
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
			prev = r
		}
	}
	return regexp.MustCompile(`(?s)` + re.String())
}

// matchAnswer finds the lines of a documented answer in out, in order.
func matchAnswer(out string, answer []string) error {
	for _, line := range answer {
		if strings.TrimSpace(line) == "" {
			continue
		}
		loc := answerPattern(line).FindStringIndex(out)
		if loc == nil {
			return fmt.Errorf("the answer lacks %s", line)
		}
		out = out[loc[1]:]
	}
	return nil
}

func TestAnswerPattern(t *testing.T) {
	cases := []struct {
		line, out string
		want      bool
	}{
		{`{"account":{"id":"acct_...", ... "email":"shop@example.com", ...}}`, `{"account":{"id":"acct_1","role":"ROLE_MERCHANT", "email":"shop@example.com","x":1}}`, true},
		{`"status":"PAYMENT_STATUS_SUCCEEDED"`, `{"status":"PAYMENT_STATUS_FAILED"}`, false},
		{`"description":"Two books"`, `{"description":"Two books"}`, true},
		{`"description":"Two books"`, `{"description":"Twobooks"}`, false},
		{`{"a":1, "b":2}`, `{"a":1,"b":2}`, true},
		{`{"a":1,"b":2}`, `{"a": 1, "b": 2}`, true},
		{`303 https://shop.example/orders/1002?payment_intent=pi_sbx_...&redirect_status=succeeded`, "303 https://shop.example/orders/1002?payment_intent=pi_sbx_9&redirect_status=succeeded\n", true},
		{`303 https://shop.example/orders/1002?payment_intent=pi_sbx_...&redirect_status=succeeded`, "303 https://shop.example/orders/1002?payment_intent=pi_sbx_9&redirect_status=failed\n", false},
	}
	for _, c := range cases {
		if got := answerPattern(c.line).MatchString(c.out); got != c.want {
			t.Errorf("%s against %s: %v, want %v (%s)", c.line, c.out, got, c.want, answerPattern(c.line))
		}
	}
	if err := matchAnswer(`{"a":1}{"b":2}`, []string{`{"b":2}`, `{"a":1}`}); err == nil {
		t.Error("matchAnswer found the lines of an answer out of order")
	}
}

// TestReadmeWalkthrough runs the README's walkthrough, its commands and its
// routes (readmeSections), every ```sh block in order in one bash, against `paymentsd dev` (its own
// Temporal dev server, SQLite, the sandbox gateway), and checks the answer
// each block documents in the ```json block after it. The README's
// addresses are the test's own: http://127.0.0.1:8080, the UI's port 8233
// and the example receiver's 127.0.0.1:9999 are replaced by free ports,
// bin/ by a directory where paymentsd is built, .data/ by the data
// directory of this dev.
func TestReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("TestReadmeWalkthrough: skipped in -short mode (it starts paymentsd dev)")
	}
	if _, err := devserver.Find(); err != nil {
		t.Fatalf("this test needs the Temporal CLI: %v", err)
	}
	for _, tool := range []string{"bash", "curl", "sed", "grep", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's walkthrough needs %s: %v", tool, err)
		}
	}
	blocks := readmeWalkthrough(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataDir, binDir := filepath.Join(tmp, "data"), filepath.Join(tmp, "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "paymentsd"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build paymentsd: %v\n%s", err, out)
	}
	httpAddr, temporalAddr, uiAddr, receiverAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	vars := map[string]string{
		"PAYMENTS_DATA_DIR":  dataDir,
		"PAYMENTS_HTTP_ADDR": httpAddr,
		"TEMPORAL_ADDRESS":   temporalAddr,
		"TEMPORAL_UI_URL":    "http://" + uiAddr,
	}
	base := startDev(t, vars)

	replacer := strings.NewReplacer(
		"http://127.0.0.1:8080", base,
		"127.0.0.1:8233", uiAddr,
		"127.0.0.1:9999", receiverAddr,
		" bin/", " "+binDir+"/",
		"./examples/", root+"/examples/",
		".data/", dataDir+"/",
	)
	const marker = "\n@@readme-block-end@@\n"
	var script strings.Builder
	for _, b := range blocks {
		script.WriteString(replacer.Replace(b.script))
		script.WriteString("\nprintf '" + strings.ReplaceAll(marker, "\n", `\n`) + "'\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PAYMENTS_DATA_DIR="+dataDir, "TMPDIR="+tmp)
	// The walkthrough starts the example receiver in the background: the
	// whole group goes when the run ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	outs := strings.Split(string(out), marker)
	if err != nil || len(outs) != len(blocks)+1 {
		t.Fatalf("the walkthrough's script ended with %v after %d of %d blocks; its output:\n%s", err, len(outs)-1, len(blocks), out)
	}
	if os.Getenv("PAYMENTS_README_DUMP") != "" {
		for i, b := range blocks {
			t.Logf("README.md:%d answered:\n%s", b.line, outs[i])
		}
	}
	answered := 0
	for i, b := range blocks {
		if b.answer == nil {
			continue
		}
		answered++
		answer := make([]string, len(b.answer))
		for j, line := range b.answer {
			answer[j] = replacer.Replace(line)
		}
		if err := matchAnswer(outs[i], answer); err != nil {
			t.Errorf("README.md:%d: %v\nthe block answered:\n%s", b.line, err, outs[i])
		}
	}
	if answered*2 < len(blocks) {
		t.Errorf("README.md: %d of the %d ```sh blocks document their answer in a ```json block, want at least half", answered, len(blocks))
	}
}
