// Command mutationreport writes the figures of gremlins mutation-testing runs
// into the generated section of docs/TESTING.md (`make mutate` runs it).
//
//	mutationreport [-doc docs/TESTING.md] [-root .] [-blocks profile [-run-blind]] [-mysql] [-skip 'pkg ...'] [-date YYYY-MM-DD] dir=report.json ...
//
// Each argument names the directory a `gremlins unleash dir -o report.json`
// run was given and its JSON output. The figures are split per Go package,
// merged with those already in the document (a run over a directory replaces
// every package under it; the others keep their figures and dates), and the
// section between the mutate markers is rewritten: a table per package and
// the list of mutants that lived or that no test covers. Lived mutants listed
// in the hand-written table of equivalent mutants are marked as such, and so
// are NOT COVERED mutants outside every block of Go's coverage profile
// (-blocks), which gremlins can never run; with -run-blind the report runs
// those itself, as gremlins would, and says what the tests did.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mutationreport:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mutationreport", flag.ContinueOnError)
	doc := fs.String("doc", "docs/TESTING.md", "the document whose generated section is rewritten")
	root := fs.String("root", ".", "the module root, to read source lines and test files")
	mysql := fs.Bool("mysql", false, "the store tests also ran on MySQL (PAYMENTS_TEST_MYSQL_DSN was set)")
	skip := fs.String("skip", "", "packages left out of the report (test helpers), separated by commas or spaces")
	blocks := fs.String("blocks", "", "a `go test -run '^$' -coverprofile` file of the packages: NOT COVERED mutants outside all its blocks are marked")
	runBlind := fs.Bool("run-blind", false, "run each blind mutant (see -blocks) with its package's tests, in a copy of the module")
	blindWorkers := fs.Int("blind-workers", runtime.NumCPU(), "how many blind mutants run at once, each in its own copy of the module")
	blindTimeout := fs.Duration("blind-timeout", 10*time.Minute, "bound on one test run of a blind mutant")
	rerun := fs.String("rerun", "", "a `go test -coverprofile` file of the tests as they are now: run again the mutants of each report that did not die, and write the report back before the figures")
	date := fs.String("date", time.Now().UTC().Format("2006-01-02"), "date of the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no runs given: want dir=report.json arguments")
	}
	var runs []RunInput
	for _, a := range fs.Args() {
		dir, file, ok := strings.Cut(a, "=")
		if !ok || dir == "" || file == "" {
			return fmt.Errorf("argument %q: want dir=report.json", a)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if *rerun != "" {
			if b, err = rerunFile(*rerun, *root, dir, file, b, *blindWorkers, *blindTimeout, stdout); err != nil {
				return err
			}
		}
		runs = append(runs, RunInput{Dir: dir, JSON: b})
	}
	opt := Options{Date: *date, MySQL: *mysql, Root: *root}
	if *blocks != "" {
		raw, err := os.ReadFile(*blocks)
		if err != nil {
			return err
		}
		if opt.Blocks, err = ParseBlocks(raw); err != nil {
			return fmt.Errorf("%s: %w", *blocks, err)
		}
	}
	if *runBlind {
		r := &blindRunner{root: *root, timeout: *blindTimeout, log: stdout}
		defer r.close()
		opt.RunBlind, opt.BlindWorkers = r.run, *blindWorkers
	}
	opt.Skip = strings.FieldsFunc(*skip, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	// The blind mutants take minutes: the document is read after them, so
	// that edits made meanwhile are kept.
	fresh, dirs, err := Fresh(runs, opt)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(*doc)
	if err != nil {
		return err
	}
	updated, err := Rewrite(string(old), fresh, dirs)
	if err != nil {
		return fmt.Errorf("%s: %w", *doc, err)
	}
	if err := os.WriteFile(*doc, []byte(updated), 0o644); err != nil {
		return err
	}
	for _, p := range fresh {
		eff, _ := p.Efficacy()
		cov, _ := p.Coverage()
		fmt.Fprintf(stdout, "%s: efficacy %.1f%%, mutator coverage %.1f%% (%d killed, %d lived, %d not covered, %d of them blind, %d timed out)\n",
			p.Path, eff, cov, p.Killed, p.Lived, p.NotCovered, p.blindCount(), p.TimedOut)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *doc)
	return nil
}

// rerunFile runs Rerun on the report in file and writes the result back.
func rerunFile(profile, root, dir, file string, report []byte, workers int, timeout time.Duration, log io.Writer) ([]byte, error) {
	raw, err := os.ReadFile(profile)
	if err != nil {
		return nil, err
	}
	covered, err := ParseCovered(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profile, err)
	}
	r := &blindRunner{root: root, timeout: timeout, log: log}
	defer r.close()
	out, err := Rerun(report, root, dir, covered, r.run, workers)
	if err != nil {
		return nil, err
	}
	return out, os.WriteFile(file, out, 0o644)
}
