package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Gremlins' mutators (its engine/mappings.go, v0.5.0): for each mutator type,
// the token it replaces and the token it puts in.
var mutations = map[string]map[token.Token]token.Token{
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL, token.SUB: token.ADD},
	"CONDITIONALS_BOUNDARY": {token.GEQ: token.GTR, token.GTR: token.GEQ, token.LEQ: token.LSS, token.LSS: token.LEQ},
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR,
		token.LSS: token.GEQ, token.NEQ: token.EQL},
	"INCREMENT_DECREMENT": {token.DEC: token.INC, token.INC: token.DEC},
	"INVERT_ASSIGNMENTS": {token.ADD_ASSIGN: token.SUB_ASSIGN, token.MUL_ASSIGN: token.QUO_ASSIGN,
		token.QUO_ASSIGN: token.MUL_ASSIGN, token.REM_ASSIGN: token.REM_ASSIGN, token.SUB_ASSIGN: token.ADD_ASSIGN},
	"INVERT_BITWISE": {token.AND: token.OR, token.OR: token.AND, token.XOR: token.AND, token.AND_NOT: token.AND,
		token.SHL: token.SHR, token.SHR: token.SHL},
	"INVERT_BWASSIGN": {token.AND_ASSIGN: token.OR_ASSIGN, token.OR_ASSIGN: token.AND_ASSIGN, token.XOR_ASSIGN: token.AND_ASSIGN,
		token.AND_NOT_ASSIGN: token.AND_ASSIGN, token.SHL_ASSIGN: token.SHR_ASSIGN, token.SHR_ASSIGN: token.SHL_ASSIGN},
	"INVERT_LOGICAL":   {token.LAND: token.LOR, token.LOR: token.LAND},
	"INVERT_LOOPCTRL":  {token.BREAK: token.CONTINUE, token.CONTINUE: token.BREAK},
	"INVERT_NEGATIVES": {token.SUB: token.ADD},
	"REMOVE_SELF_ASSIGNMENTS": {token.ADD_ASSIGN: token.ASSIGN, token.AND_ASSIGN: token.ASSIGN, token.AND_NOT_ASSIGN: token.ASSIGN,
		token.MUL_ASSIGN: token.ASSIGN, token.OR_ASSIGN: token.ASSIGN, token.QUO_ASSIGN: token.ASSIGN, token.REM_ASSIGN: token.ASSIGN,
		token.SHL_ASSIGN: token.ASSIGN, token.SHR_ASSIGN: token.ASSIGN, token.SUB_ASSIGN: token.ASSIGN},
}

// applyMutant returns src with the mutator typ applied to the token at
// line:column (1-based, column in bytes), as gremlins applies it.
func applyMutant(src []byte, line, column int, typ string) ([]byte, error) {
	repl, ok := mutations[typ]
	if !ok {
		return nil, fmt.Errorf("unknown mutator %s", typ)
	}
	fset := token.NewFileSet()
	file := fset.AddFile("x.go", -1, len(src))
	var sc scanner.Scanner
	sc.Init(file, src, nil, 0)
	for {
		pos, tok, lit := sc.Scan()
		if tok == token.EOF {
			return nil, fmt.Errorf("no token at %d:%d", line, column)
		}
		p := fset.Position(pos)
		if p.Line < line || p.Line == line && p.Column < column {
			continue
		}
		if p.Line != line || p.Column != column {
			return nil, fmt.Errorf("no token at %d:%d", line, column)
		}
		to, ok := repl[tok]
		if !ok {
			return nil, fmt.Errorf("%s does not apply to %q at %d:%d", typ, tok, line, column)
		}
		text := tok.String()
		if lit != "" {
			text = lit
		}
		off := file.Offset(pos)
		out := make([]byte, 0, len(src)+4)
		out = append(out, src[:off]...)
		out = append(out, to.String()...)
		return append(out, src[off+len(text):]...), nil
	}
}

// blindRunner runs blind mutants with their package's tests in copies of
// the module, as gremlins runs the others: each run takes a copy nobody else
// is using (made on first need), so that runs can go in parallel.
type blindRunner struct {
	root    string        // the module
	timeout time.Duration // per test run

	mu     sync.Mutex
	log    io.Writer // guarded by mu
	free   []string  // copies not in use
	copies []string  // every copy made
	err    error     // why a copy could not be made: nothing more runs
}

// acquire takes a free copy of the module, making one if none is free.
func (r *blindRunner) acquire() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return "", r.err
	}
	if n := len(r.free); n > 0 {
		dir := r.free[n-1]
		r.free = r.free[:n-1]
		return dir, nil
	}
	dir, err := os.MkdirTemp("", "mutationreport-")
	if err == nil {
		r.copies = append(r.copies, dir)
		err = copyModule(r.root, dir)
	}
	if err != nil {
		r.err = err
		fmt.Fprintf(r.log, "mutationreport: blind mutants not run: copy of the module: %v\n", err)
		return "", err
	}
	return dir, nil
}

func (r *blindRunner) release(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.free = append(r.free, dir)
}

func (r *blindRunner) logf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.log, format, a...)
}

// skipDirs are top-level directories of the module the copy leaves out:
// tools, local data, VCS and outputs.
var skipDirs = map[string]bool{".git": true, "bin": true, ".data": true, ".mutate": true, ".proto-deps": true}

// copyModule copies root into dst, but for skipDirs.
func copyModule(root, dst string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() && skipDirs[filepath.ToSlash(rel)] {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
}

// run applies m to its file in a copy, runs the package's tests and puts
// the file back. It returns "" when it cannot run the mutant: the source
// changed since gremlins ran (the line is not the one listed), or no copy
// could be made. It is safe for concurrent use.
func (r *blindRunner) run(pkgPath string, m Mutant) string {
	work, err := r.acquire()
	if err != nil {
		return ""
	}
	defer r.release(work)
	file := filepath.Join(work, filepath.FromSlash(pkgPath), m.File)
	src, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(src), "\n")
	if m.Line < 1 || m.Line > len(lines) || strings.TrimSpace(lines[m.Line-1]) != m.Code {
		r.logf("mutationreport: %s/%s:%d changed since gremlins ran: not run\n", pkgPath, m.File, m.Line)
		return ""
	}
	mutated, err := applyMutant(src, m.Line, m.Column, m.Type)
	if err != nil {
		r.logf("mutationreport: %s/%s:%d:%d: %v\n", pkgPath, m.File, m.Line, m.Column, err)
		return ""
	}
	if err := os.WriteFile(file, mutated, 0o644); err != nil {
		return ""
	}
	defer func() { _ = os.WriteFile(file, src, 0o644) }()

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-failfast", "-timeout", (r.timeout + 2*time.Second).String(), "./"+pkgPath)
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	status := testStatus(ctx.Err(), err, out.String())
	r.logf("%12s %s at %s/%s:%d:%d (run by the report)\n", status, m.Type, pkgPath, m.File, m.Line, m.Column)
	return status
}

// testStatus names the outcome of `go test` on a mutant as gremlins does.
func testStatus(ctxErr, runErr error, output string) string {
	var exit *exec.ExitError
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return statusTimedOut
	case runErr == nil:
		return statusLived
	case strings.Contains(output, "[build failed]") || strings.Contains(output, "[setup failed]"):
		return statusNotViable
	case errors.As(runErr, &exit):
		return statusKilled
	}
	return statusNotViable // go itself did not run
}

// close removes the copies.
func (r *blindRunner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dir := range r.copies {
		_ = os.RemoveAll(dir)
	}
	r.copies, r.free = nil, nil
}
