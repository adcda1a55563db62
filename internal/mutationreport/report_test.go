package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gatewayRun is a gremlins report over internal/gateway: its walk reaches
// the stripe sub-package too, and a test helper package to skip.
const gatewayRun = `{
  "go_module": "github.com/payments-platform/payments",
  "test_efficacy": 75, "mutations_coverage": 80,
  "mutants_total": 4, "mutants_killed": 3, "mutants_lived": 1, "mutants_not_viable": 0, "mutants_not_covered": 1,
  "elapsed_time": 12.5,
  "files": [
    {"file_name": "amounts.go", "mutations": [
      {"type": "CONDITIONALS_BOUNDARY", "status": "KILLED", "line": 10, "column": 5},
      {"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 3, "column": 7},
      {"type": "ARITHMETIC_BASE", "status": "TIMED OUT", "line": 4, "column": 2}
    ]},
    {"file_name": "stripe/stripe.go", "mutations": [
      {"type": "ARITHMETIC_BASE", "status": "KILLED", "line": 2, "column": 9},
      {"type": "INCREMENT_DECREMENT", "status": "NOT COVERED", "line": 1, "column": 4},
      {"type": "INVERT_NEGATIVES", "status": "NOT VIABLE", "line": 1, "column": 8}
    ]},
    {"file_name": "stripe/helper/helper.go", "mutations": [
      {"type": "ARITHMETIC_BASE", "status": "KILLED", "line": 1, "column": 1}
    ]}
  ]
}`

// writeModule lays out the sources gatewayRun points at, so the report can
// quote their lines and see which packages' tests use storetest.
func writeModule(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"internal/gateway/amounts.go":              "package gateway\n\nif   a != b {\n\tx := -1\n",
		"internal/gateway/stripe/stripe.go":        "\tn++ // `raw` here\nreturn a + b\n",
		"internal/gateway/stripe/stripe_test.go":   "package stripe\n",
		"internal/gateway/stripe/helper/helper.go": "x\n",
		"internal/store/store_test.go":             "package store_test\n\nimport \"github.com/payments-platform/payments/internal/store/storetest\"\n",
		"internal/store/store.go":                  "package store\nif a < b {\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCleanDir(t *testing.T) {
	for in, want := range map[string]string{
		"./internal/money":  "internal/money",
		"internal/money/":   "internal/money",
		"./workflows/...":   "workflows",
		"workflows/payment": "workflows/payment",
		"./...":             ".",
		".":                 ".",
	} {
		if got := CleanDir(in); got != want {
			t.Errorf("CleanDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRunSplitsPackagesAndCounts(t *testing.T) {
	root := writeModule(t)
	pkgs, err := ParseRun(RunInput{Dir: "./internal/gateway", JSON: []byte(gatewayRun)},
		Options{Date: "2026-12-02", Root: root, Skip: []string{"./internal/gateway/stripe/helper"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{
			Path: "internal/gateway", Killed: 1, Lived: 1, TimedOut: 1, Date: "2026-12-02", Database: "—",
			Mutants: []Mutant{{Status: "LIVED", File: "amounts.go", Line: 3, Column: 7, Type: "CONDITIONALS_NEGATION", Code: "if   a != b {"}},
		},
		{
			Path: "internal/gateway/stripe", Killed: 1, NotCovered: 1, NotViable: 1, Date: "2026-12-02", Database: "—",
			Mutants: []Mutant{{Status: "NOT COVERED", File: "stripe.go", Line: 1, Column: 4, Type: "INCREMENT_DECREMENT", Code: "n++ // `raw` here"}},
		},
	}
	if !reflect.DeepEqual(pkgs, want) {
		t.Fatalf("ParseRun:\n got %+v\nwant %+v", pkgs, want)
	}
	eff, ok := pkgs[0].Efficacy()
	if !ok || eff != 50 {
		t.Errorf("efficacy = %v, %v; want 50, true", eff, ok)
	}
	cov, ok := pkgs[1].Coverage()
	if !ok || cov != 50 {
		t.Errorf("coverage = %v, %v; want 50, true", cov, ok)
	}
}

func TestParseRunDatabases(t *testing.T) {
	root := writeModule(t)
	run := `{"mutants_killed": 1, "files": [{"file_name": "store.go", "mutations": [{"type": "CONDITIONALS_BOUNDARY", "status": "KILLED", "line": 2, "column": 6}]}]}`
	for mysql, want := range map[bool]string{false: "SQLite", true: "SQLite + MySQL"} {
		pkgs, err := ParseRun(RunInput{Dir: "internal/store", JSON: []byte(run)}, Options{Root: root, MySQL: mysql})
		if err != nil {
			t.Fatal(err)
		}
		if len(pkgs) != 1 || pkgs[0].Database != want {
			t.Errorf("mysql=%v: database = %+v, want %q", mysql, pkgs, want)
		}
	}
}

func TestParseRunRejectsWhatItDoesNotUnderstand(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `gremlins: no results`,
		"totals disagree": `{"mutants_killed": 2, "files": [{"file_name": "a.go", "mutations": [{"type": "ARITHMETIC_BASE", "status": "KILLED", "line": 1, "column": 1}]}]}`,
		"unknown status":  `{"files": [{"file_name": "a.go", "mutations": [{"type": "ARITHMETIC_BASE", "status": "EATEN", "line": 1, "column": 1}]}]}`,
	} {
		if _, err := ParseRun(RunInput{Dir: "internal/x", JSON: []byte(body)}, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseRunIgnoresDryRunStatuses(t *testing.T) {
	run := `{"files": [{"file_name": "a.go", "mutations": [
		{"type": "ARITHMETIC_BASE", "status": "RUNNABLE", "line": 1, "column": 1},
		{"type": "ARITHMETIC_BASE", "status": "SKIPPED", "line": 2, "column": 1}]}]}`
	pkgs, err := ParseRun(RunInput{Dir: "internal/x", JSON: []byte(run)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].Killed+pkgs[0].Lived+pkgs[0].NotCovered+pkgs[0].TimedOut != 0 || len(pkgs[0].Mutants) != 0 {
		t.Fatalf("dry-run statuses counted: %+v", pkgs)
	}
	if _, ok := pkgs[0].Efficacy(); ok {
		t.Error("efficacy reported without a covered mutant")
	}
	if _, ok := pkgs[0].Coverage(); ok {
		t.Error("coverage reported without a mutant")
	}
}

func TestMergeReplacesEverythingUnderARunDir(t *testing.T) {
	old := []Package{
		{Path: "internal/auth", Killed: 9, Date: "2026-11-01"},
		{Path: "internal/gateway", Killed: 1, Date: "2026-11-01"},
		{Path: "internal/gateway/gone", Killed: 1, Date: "2026-11-01"},
		{Path: "internal/gatewayx", Killed: 7, Date: "2026-11-01"},
		{Path: "internal/money", Killed: 5, Date: "2026-11-01"},
	}
	fresh := []Package{
		{Path: "internal/gateway/stripe", Killed: 3, Date: "2026-12-02"},
		{Path: "internal/gateway", Killed: 2, Date: "2026-12-02"},
	}
	got := Merge(old, fresh, []string{"./internal/gateway"})
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Path+"@"+p.Date)
	}
	want := []string{
		"internal/auth@2026-11-01",
		"internal/gateway@2026-12-02",
		"internal/gateway/stripe@2026-12-02",
		"internal/gatewayx@2026-11-01", // a sibling with the same prefix is not under the dir
		"internal/money@2026-11-01",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("Merge = %v, want %v", paths, want)
	}
}

func TestCodeSpanRoundTrip(t *testing.T) {
	for _, code := range []string{"a + b", "x := `raw`", "s := ``", "`", "a || b"} {
		span := codeSpan(code)
		got, rest, ok := unCodeSpan(span + " tail")
		if !ok || got != code || rest != " tail" {
			t.Errorf("codeSpan(%q) = %q read back as %q, %q, %v", code, span, got, rest, ok)
		}
	}
	if _, _, ok := unCodeSpan("no span"); ok {
		t.Error("read a code span where there is none")
	}
	if _, _, ok := unCodeSpan("`unterminated"); ok {
		t.Error("read an unterminated code span")
	}
}

func TestSectionRendersAndParsesBack(t *testing.T) {
	pkgs := []Package{
		{
			Path: "internal/gateway", Killed: 38, Lived: 2, NotCovered: 1, TimedOut: 1, Date: "2026-12-02", Database: "—",
			Mutants: []Mutant{
				{Status: "LIVED", File: "amounts.go", Line: 3, Column: 7, Type: "CONDITIONALS_NEGATION", Code: "if a != b {"},
				{Status: "LIVED", File: "amounts.go", Line: 9, Column: 2, Type: "ARITHMETIC_BASE", Code: "x := `a` + b"},
				{Status: "NOT COVERED", File: "gateway.go", Line: 1, Column: 4, Type: "INCREMENT_DECREMENT"},
			},
		},
		{Path: "internal/store", Killed: 10, Date: "2026-12-01", Database: "SQLite + MySQL"},
		{Path: "workflows/presets", Killed: 1, NotCovered: 2, Date: "2026-12-01", Database: "—",
			Mutants: []Mutant{
				{Status: "NOT COVERED", File: "presets.go", Line: 5, Column: 1, Type: "ARITHMETIC_BASE", Code: "a || b"},
				{Status: "NOT COVERED", File: "presets.go", Line: 7, Column: 1, Type: "ARITHMETIC_BASE", Code: "var x = 1 + 2", Blind: true, Run: "KILLED"},
			}},
	}
	eqs := []Equivalent{{Package: "internal/gateway", File: "amounts.go", Type: "CONDITIONALS_NEGATION", Code: "if a  !=  b {", Reason: "r"}}
	section := Section(pkgs, eqs)
	for _, want := range []string{
		"| `internal/gateway` | 38 | 2 | 1 | 1 | 0 | 1 | 95.0% (97.4%) | 97.6% | 2026-12-02 | — |",
		"| `internal/store` | 10 | 0 | 0 | 0 | 0 | 0 | 100.0% | 100.0% | 2026-12-01 | SQLite + MySQL |",
		"| `workflows/presets` | 1 | 0 | 0 | 2 | 1 | 0 | 100.0% | 33.3% (66.7%) | 2026-12-01 | — |",
		"- NOT COVERED `presets.go:7:1` ARITHMETIC_BASE `var x = 1 + 2` — " + noteBlind + "; run by make mutate: KILLED\n",
		"- LIVED `amounts.go:3:7` CONDITIONALS_NEGATION `if a != b {` — equivalent\n",
		"- LIVED `amounts.go:9:2` ARITHMETIC_BASE `` x := `a` + b ``\n",
		"- NOT COVERED `gateway.go:1:4` INCREMENT_DECREMENT\n",
		"#### `internal/store`\n\nNo mutant lived; every mutant is covered.\n",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("section lacks %q:\n%s", want, section)
		}
	}
	if !strings.HasPrefix(section, beginMarker) || !strings.HasSuffix(section, endMarker+"\n") {
		t.Errorf("section not between the markers:\n%s", section)
	}
	back, err := ParseSection(section)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, pkgs) {
		t.Fatalf("parsed back:\n got %+v\nwant %+v", back, pkgs)
	}
	if again := Section(back, eqs); again != section {
		t.Fatalf("render, parse, render differs:\n%s\n---\n%s", section, again)
	}
}

func TestEmptySection(t *testing.T) {
	s := Section(nil, nil)
	pkgs, err := ParseSection(s)
	if err != nil || len(pkgs) != 0 {
		t.Fatalf("ParseSection(empty) = %v, %v", pkgs, err)
	}
	if !strings.Contains(s, "make mutate") {
		t.Errorf("empty section does not say how to fill it: %q", s)
	}
}

func TestParseSectionRejectsDamage(t *testing.T) {
	// The control parses: each case below breaks one thing of it.
	control := "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- LIVED `a.go:1:1` X\n"
	if pkgs, err := ParseSection(control); err != nil || len(pkgs) != 1 || len(pkgs[0].Mutants) != 1 {
		t.Fatalf("control: %+v, %v", pkgs, err)
	}
	for name, section := range map[string]string{
		"short row":        "| `internal/money` | 1 | 2 |\n",
		"bad number":       "| `internal/money` | x | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n",
		"bad timed out":    "| `internal/money` | 0 | 0 | 0 | 0 | 0 | x | — | — | d | — |\n",
		"orphan list":      "#### `internal/money`\n",
		"mutant w/o list":  "- LIVED `a.go:1:1` ARITHMETIC_BASE\n",
		"bad status":       "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- EATEN `a.go:1:1` X\n",
		"bad position":     "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- LIVED `a.go:1` X\n",
		"no position":      "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- LIVED a.go:1:1 X\n",
		"no mutator":       "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- LIVED `a.go:1:1`\n",
		"non-numeric line": "| `p` | 1 | 0 | 0 | 0 | 0 | 0 | — | — | d | — |\n#### `p`\n- LIVED `a.go:x:1` X\n",
	} {
		if _, err := ParseSection(section); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseEquivalents(t *testing.T) {
	doc := "intro\n" + equivBegin + "\n" +
		"| package | file | mutator | code | reason |\n" +
		"|---|---|---|---|---|\n" +
		"| `internal/money` | `money.go` | CONDITIONALS_BOUNDARY | `if a \\|\\| n >= 0 {` | both branches return the same value at 0 |\n" +
		"| `internal/money` | `money.go:120:9` | CONDITIONALS_BOUNDARY | `if exp < 0 {` | r |\n" +
		equivEnd + "\nafter | not | a | row |\n"
	eqs, err := ParseEquivalents(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []Equivalent{
		{Package: "internal/money", File: "money.go", Type: "CONDITIONALS_BOUNDARY", Code: "if a || n >= 0 {", Reason: "both branches return the same value at 0"},
		{Package: "internal/money", File: "money.go", Line: 120, Column: 9, Type: "CONDITIONALS_BOUNDARY", Code: "if exp < 0 {", Reason: "r"},
	}
	if !reflect.DeepEqual(eqs, want) {
		t.Fatalf("ParseEquivalents = %+v, want %+v", eqs, want)
	}
	if _, err := ParseEquivalents(equivBegin + "\n| a | b |\n" + equivEnd); err == nil {
		t.Error("a row with the wrong number of cells was accepted")
	}
	for _, file := range []string{"`a.go:1`", "`a.go:x:1`", "`a.go:1:x`", "`a.go:1:0`"} {
		if _, err := ParseEquivalents(equivBegin + "\n| `p` | " + file + " | X | `c` | r |\n" + equivEnd); err == nil {
			t.Errorf("file cell %s accepted", file)
		}
	}
	if _, err := ParseEquivalents(equivBegin + "\n"); err == nil {
		t.Error("a begin marker without an end was accepted")
	}
	if eqs, err := ParseEquivalents("no table"); err != nil || eqs != nil {
		t.Errorf("ParseEquivalents(no table) = %v, %v", eqs, err)
	}
}

func TestEquivalentMatchesOnlyTheSameLivedMutant(t *testing.T) {
	e := Equivalent{Package: "p", File: "a.go", Type: "ARITHMETIC_BASE", Code: "x + y"}
	lived := Mutant{Status: "LIVED", File: "a.go", Type: "ARITHMETIC_BASE", Code: "x  +  y", Line: 40, Column: 4}
	if !e.matches("p", lived) {
		t.Error("the same mutant, moved to another line and re-spaced, did not match")
	}
	at := e
	at.Line, at.Column = 12, 4
	if !at.matches("p", lived) {
		t.Error("an entry with the mutant's column did not match it on another line")
	}
	at.Column = 5
	if at.matches("p", lived) {
		t.Error("an entry for another column of the line matched")
	}
	for name, m := range map[string]Mutant{
		"other package": lived,
		"not covered":   {Status: "NOT COVERED", File: "a.go", Type: "ARITHMETIC_BASE", Code: "x + y"},
		"other file":    {Status: "LIVED", File: "b.go", Type: "ARITHMETIC_BASE", Code: "x + y"},
		"other mutator": {Status: "LIVED", File: "a.go", Type: "INVERT_NEGATIVES", Code: "x + y"},
		"other code":    {Status: "LIVED", File: "a.go", Type: "ARITHMETIC_BASE", Code: "x - y"},
		"no code":       {Status: "LIVED", File: "a.go", Type: "ARITHMETIC_BASE"},
	} {
		pkg := "p"
		if name == "other package" {
			pkg = "q"
		}
		if e.matches(pkg, m) {
			t.Errorf("%s: matched", name)
		}
	}
}

func TestUpdateMergesIntoTheDocument(t *testing.T) {
	root := writeModule(t)
	oldSection := Section([]Package{
		{Path: "internal/auth", Killed: 50, Lived: 1, Date: "2026-11-01", Database: "—",
			Mutants: []Mutant{{Status: "LIVED", File: "jwt.go", Line: 7, Column: 3, Type: "ARITHMETIC_BASE", Code: "n - 1"}}},
		{Path: "internal/gateway", Killed: 1, Date: "2026-11-01", Database: "—"},
	}, nil)
	doc := "# Testing\n\nhand-written text\n\n" + oldSection + "\n## Equivalent mutants\n\n" + equivBegin + "\n" +
		"| package | file | mutator | code | reason |\n|---|---|---|---|---|\n" +
		"| `internal/auth` | `jwt.go` | ARITHMETIC_BASE | `n - 1` | only reached with n = 0 |\n" +
		"| `internal/gateway` | `amounts.go` | CONDITIONALS_NEGATION | `if a != b {` | a and b are equal there |\n" +
		equivEnd + "\n\nfooter\n"

	got, _, err := Update(doc, []RunInput{{Dir: "./internal/gateway", JSON: []byte(gatewayRun)}},
		Options{Date: "2026-12-02", Root: root, Skip: []string{"internal/gateway/stripe/helper"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Testing\n\nhand-written text\n\n" + beginMarker,
		"| `internal/auth` | 50 | 1 | 1 | 0 | 0 | 0 | 98.0% (100.0%) | 100.0% | 2026-11-01 | — |",
		"- LIVED `jwt.go:7:3` ARITHMETIC_BASE `n - 1` — equivalent",
		"| `internal/gateway` | 1 | 1 | 1 | 0 | 0 | 1 | 50.0% (100.0%) | 100.0% | 2026-12-02 | — |",
		"- LIVED `amounts.go:3:7` CONDITIONALS_NEGATION `if   a != b {` — equivalent",
		"| `internal/gateway/stripe` | 1 | 0 | 0 | 1 | 0 | 0 | 100.0% | 50.0% | 2026-12-02 | — |",
		endMarker + "\n\n## Equivalent mutants",
		"\n\nfooter\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("updated document lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "helper") {
		t.Errorf("skipped package reported:\n%s", got)
	}
	if strings.Count(got, beginMarker) != 1 || strings.Count(got, endMarker) != 1 {
		t.Errorf("markers duplicated:\n%s", got)
	}

	// Running again with the same input changes nothing.
	again, _, err := Update(got, []RunInput{{Dir: "./internal/gateway", JSON: []byte(gatewayRun)}},
		Options{Date: "2026-12-02", Root: root, Skip: []string{"internal/gateway/stripe/helper"}})
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Errorf("a second identical update changed the document:\n%s\n---\n%s", got, again)
	}
}

func TestUpdateErrors(t *testing.T) {
	run := []RunInput{{Dir: "internal/x", JSON: []byte(`{"files": []}`)}}
	if _, _, err := Update("no markers here", run, Options{}); err == nil {
		t.Error("document without markers accepted")
	}
	if _, _, err := Update(beginMarker+"\n", run, Options{}); err == nil {
		t.Error("document without an end marker accepted")
	}
	if _, _, err := Update(beginMarker+"\n| `p` | x |\n"+endMarker, run, Options{}); err == nil {
		t.Error("damaged section accepted")
	}
	if _, _, err := Update(beginMarker+"\n"+endMarker+"\n"+equivBegin, run, Options{}); err == nil {
		t.Error("damaged equivalents table accepted")
	}
	if _, _, err := Update(beginMarker+"\n"+endMarker, []RunInput{{Dir: "x", JSON: []byte("{")}}, Options{}); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestRunRewritesTheFile(t *testing.T) {
	root := writeModule(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "TESTING.md")
	if err := os.WriteFile(doc, []byte("# T\n\n"+Section(nil, nil)+"\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "store.json")
	run := `{"mutants_killed": 1, "mutants_lived": 1, "files": [{"file_name": "store.go", "mutations": [
		{"type": "CONDITIONALS_BOUNDARY", "status": "KILLED", "line": 2, "column": 6},
		{"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 2, "column": 6}]}]}`
	if err := os.WriteFile(report, []byte(run), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run2(t, []string{"-doc", doc, "-root", root, "-mysql", "-skip", "internal/a, internal/b internal/c", "-date", "2026-12-03", "internal/store=" + report}, &out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `internal/store` | 1 | 1 | 0 | 0 | 0 | 0 | 50.0% | 100.0% | 2026-12-03 | SQLite + MySQL |",
		"- LIVED `store.go:2:6` CONDITIONALS_NEGATION `if a < b {`",
		"\ntail\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("TESTING.md lacks %q:\n%s", want, b)
		}
	}
	if !strings.Contains(out.String(), "internal/store: efficacy 50.0%, mutator coverage 100.0%") {
		t.Errorf("summary = %q", out.String())
	}

	// With -blocks, a NOT COVERED mutant outside every block is marked.
	blocks := filepath.Join(dir, "blocks.out")
	if err := os.WriteFile(blocks, []byte("mode: set\nexample.com/m/internal/store/store.go:2.1,2.5 1 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uncovered := filepath.Join(dir, "uncovered.json")
	if err := os.WriteFile(uncovered, []byte(`{"mutants_not_covered": 2, "files": [{"file_name": "store.go", "mutations": [
		{"type": "CONDITIONALS_BOUNDARY", "status": "NOT COVERED", "line": 2, "column": 6},
		{"type": "CONDITIONALS_NEGATION", "status": "NOT COVERED", "line": 2, "column": 4}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run2(t, []string{"-doc", doc, "-root", root, "-blocks", blocks, "internal/store=" + uncovered}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(doc)
	for _, want := range []string{
		"- NOT COVERED `store.go:2:4` CONDITIONALS_NEGATION `if a < b {`\n",
		"- NOT COVERED `store.go:2:6` CONDITIONALS_BOUNDARY `if a < b {` — " + noteBlind + "\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("TESTING.md lacks %q:\n%s", want, b)
		}
	}

	// A skipped package is left out, and its old row goes with it.
	if err := run2(t, []string{"-doc", doc, "-root", root, "-skip", "internal/a internal/store", "internal/store=" + report}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(doc); strings.Contains(string(b), "internal/store") {
		t.Errorf("skipped package still reported:\n%s", b)
	}

	for name, args := range map[string][]string{
		"no runs":        {"-doc", doc},
		"bad argument":   {"-doc", doc, "internal/store"},
		"missing json":   {"-doc", doc, "internal/store=" + filepath.Join(dir, "missing.json")},
		"missing doc":    {"-doc", filepath.Join(dir, "missing.md"), "internal/store=" + report},
		"bad flag":       {"-nope"},
		"missing blocks": {"-doc", doc, "-blocks", filepath.Join(dir, "missing.out"), "internal/store=" + report},
		"bad blocks":     {"-doc", doc, "-blocks", report, "internal/store=" + report},
	} {
		if err := run2(t, args, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// run2 calls run with flag output silenced.
func run2(t *testing.T, args []string, out *bytes.Buffer) error {
	t.Helper()
	stderr := os.Stderr
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	os.Stderr = null
	defer func() { os.Stderr = stderr }()
	return run(args, out)
}

func TestParseRunOrdersTheList(t *testing.T) {
	run := `{"mutants_lived": 5, "mutants_not_covered": 1, "files": [
		{"file_name": "b.go", "mutations": [
			{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 1, "column": 1},
			{"type": "ARITHMETIC_BASE", "status": "LIVED", "line": 5, "column": 1}]},
		{"file_name": "a.go", "mutations": [
			{"type": "ARITHMETIC_BASE", "status": "LIVED", "line": 9, "column": 3},
			{"type": "INVERT_NEGATIVES", "status": "LIVED", "line": 9, "column": 1},
			{"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 2, "column": 4},
			{"type": "CONDITIONALS_BOUNDARY", "status": "LIVED", "line": 2, "column": 4}]}]}`
	pkgs, err := ParseRun(RunInput{Dir: "internal/x", JSON: []byte(run)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range pkgs[0].Mutants {
		got = append(got, fmt.Sprintf("%s %s:%d:%d %s", m.Status, m.File, m.Line, m.Column, m.Type))
	}
	want := []string{
		"LIVED a.go:2:4 CONDITIONALS_BOUNDARY",
		"LIVED a.go:2:4 CONDITIONALS_NEGATION",
		"LIVED a.go:9:1 INVERT_NEGATIVES",
		"LIVED a.go:9:3 ARITHMETIC_BASE",
		"LIVED b.go:5:1 ARITHMETIC_BASE",
		"NOT COVERED b.go:1:1 ARITHMETIC_BASE",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
}

// blindSrc has a mutant in each place Go's coverage blocks leave out, and
// some in places they include.
const blindSrc = "package p\n" + // 1
	"\n" + // 2
	"var index [26 * 26]uint8\n" + // 3
	"\n" + // 4
	"var f = func(a int) bool { return a > 1 }\n" + // 5
	"\n" + // 6
	"func g(a int) int {\n" + // 7
	"\tswitch {\n" + // 8
	"\tcase a <= 0:\n" + // 9
	"\t\treturn a - 1\n" + // 10
	"\t}\n" + // 11
	"\tif b := h(func() int { return a * 3 }); b != 2 {\n" + // 12
	"\t\treturn b\n" + // 13
	"\t}\n" + // 14
	"\treturn a * 2\n" + // 15
	"}\n" + // 16
	"\n" + // 17
	"func h(f func() int) int { return f() }\n" // 18

// blindRun lists mutants of blindSrc, all NOT COVERED but one.
const blindRun = `{"mutants_not_covered": 8, "mutants_lived": 1, "files": [{"file_name": "p.go", "mutations": [
	{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 3, "column": 15},
	{"type": "CONDITIONALS_BOUNDARY", "status": "NOT COVERED", "line": 5, "column": 37},
	{"type": "CONDITIONALS_BOUNDARY", "status": "NOT COVERED", "line": 9, "column": 9},
	{"type": "CONDITIONALS_BOUNDARY", "status": "LIVED", "line": 9, "column": 9},
	{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 10, "column": 12},
	{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 12, "column": 34},
	{"type": "CONDITIONALS_NEGATION", "status": "NOT COVERED", "line": 12, "column": 44},
	{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 15, "column": 11},
	{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 99, "column": 1}]}]}`

// blindWant is which mutants of blindRun are outside every block.
var blindWant = map[int]string{
	3:  "NOT COVERED:" + noteBlind + ";",              // package-level declaration
	5:  "NOT COVERED:;",                               // a function literal's body is instrumented
	9:  "LIVED:;NOT COVERED:" + noteBlind + ";",       // case expression
	10: "NOT COVERED:;",                               // a case body is instrumented
	12: "NOT COVERED:;NOT COVERED:" + noteBlind + ";", // after a function literal
	15: "NOT COVERED:;",
	99: "NOT COVERED:" + noteBlind + ";", // past the end of the file
}

func blindModule(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"go.mod":       "module example.com/m\n\ngo 1.22\n",
		"p/p.go":       blindSrc,
		"p/p_test.go":  "package p\n\nimport \"testing\"\n\nfunc TestG(t *testing.T) { g(1) }\n",
		"p/README.txt": "not go\n",
	} {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(name)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func blindNotes(t *testing.T, root string, blocks Blocks) map[int]string {
	t.Helper()
	pkgs, err := ParseRun(RunInput{Dir: "p", JSON: []byte(blindRun)}, Options{Root: root, Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	notes := map[int]string{}
	for _, m := range pkgs[0].Mutants {
		note := ""
		if m.Blind {
			note = noteBlind
		}
		notes[m.Line] = notes[m.Line] + m.Status + ":" + note + ";"
	}
	return notes
}

// TestBlindSpotsOfGoCoverage asks the go command for the blocks of blindSrc,
// as `make mutate` does, so it proves which places Go's coverage leaves out.
func TestBlindSpotsOfGoCoverage(t *testing.T) {
	root := blindModule(t)
	profile := filepath.Join(t.TempDir(), "blocks.out")
	cmd := exec.Command("go", "test", "-count=1", "-run", "^$", "-coverprofile", profile, "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -coverprofile: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := ParseBlocks(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := blindNotes(t, root, blocks); !reflect.DeepEqual(got, blindWant) {
		t.Fatalf("notes:\n got %v\nwant %v\nprofile:\n%s", got, blindWant, raw)
	}
}

func TestParseBlocks(t *testing.T) {
	profile := "mode: set\n" +
		"example.com/m/p/p.go:7.19,8.10 1 0\n" +
		"example.com/m/p/p.go:9.14,10.15 1 1\n" +
		"example.com/m/p/p.go:12.2,12.33 1 0\n" +
		"example.com/m/q/p.go:3.1,3.30 1 0\n"
	blocks, err := ParseBlocks([]byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file      string
		line, col int
		want      bool
	}{
		{"p/p.go", 7, 19, true},  // first line, from the start column
		{"p/p.go", 7, 18, false}, // first line, before it
		{"p/p.go", 8, 10, true},  // last line, up to the end column
		{"p/p.go", 8, 11, false}, // last line, past it
		{"p/p.go", 9, 13, false}, // a case expression before the block
		{"p/p.go", 9, 99, true},
		{"p/p.go", 12, 2, true}, // single line: inclusive at both ends
		{"p/p.go", 12, 33, true},
		{"p/p.go", 12, 1, false},
		{"p/p.go", 12, 34, false},
		{"p/p.go", 3, 5, false}, // a line of another package's p.go
		{"q/p.go", 3, 5, true},
		{"m/p/p.go", 7, 19, true}, // matched on whole path elements
		{"mm/p/p.go", 7, 19, false},
	} {
		if got := blocks.contains(c.file, c.line, c.col); got != c.want {
			t.Errorf("contains(%s:%d:%d) = %v, want %v", c.file, c.line, c.col, got, c.want)
		}
	}
	for _, bad := range []string{"no colon here 1 1\n", "p.go:1.1,2.2 x 1\n", "p.go:1.1 1 1\n"} {
		if _, err := ParseBlocks([]byte(bad)); err == nil {
			t.Errorf("ParseBlocks(%q): no error", bad)
		}
	}
}

func TestParseRunNotesBlindSpots(t *testing.T) {
	root := blindModule(t)
	// The blocks Go writes for blindSrc (go1.26), without the counts' meaning.
	blocks, err := ParseBlocks([]byte("mode: set\n" +
		"example.com/m/p/p.go:5.26,5.42 1 0\n" +
		"example.com/m/p/p.go:7.19,8.9 1 0\n" +
		"example.com/m/p/p.go:9.14,10.15 1 0\n" +
		"example.com/m/p/p.go:12.2,12.12 1 0\n" +
		"example.com/m/p/p.go:12.12,12.41 1 0\n" +
		"example.com/m/p/p.go:12.50,14.3 1 0\n" +
		"example.com/m/p/p.go:15.2,15.14 1 0\n" +
		"example.com/m/p/p.go:18.26,18.40 1 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := blindNotes(t, root, blocks); !reflect.DeepEqual(got, blindWant) {
		t.Fatalf("notes:\n got %v\nwant %v", got, blindWant)
	}
	// Without blocks nothing is marked.
	for line, n := range blindNotes(t, root, nil) {
		if strings.Contains(n, noteBlind) {
			t.Errorf("line %d marked without blocks: %s", line, n)
		}
	}

	// The notes survive a rendering, next to the equivalent mark.
	pkgs, err := ParseRun(RunInput{Dir: "p", JSON: []byte(blindRun)}, Options{Root: root, Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	eqs := []Equivalent{{Package: "p", File: "p.go", Type: "CONDITIONALS_BOUNDARY", Code: "case a <= 0:"}}
	section := Section(pkgs, eqs)
	for _, want := range []string{
		"- LIVED `p.go:9:9` CONDITIONALS_BOUNDARY `case a <= 0:` — equivalent\n",
		"- NOT COVERED `p.go:9:9` CONDITIONALS_BOUNDARY `case a <= 0:` — " + noteBlind + "\n",
		"- NOT COVERED `p.go:3:15` ARITHMETIC_BASE `var index [26 * 26]uint8` — " + noteBlind + "\n",
		"- NOT COVERED `p.go:10:12` ARITHMETIC_BASE `return a - 1`\n",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("section lacks %q:\n%s", want, section)
		}
	}
	back, err := ParseSection(section)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back[0].Mutants, pkgs[0].Mutants) {
		t.Fatalf("parsed back:\n got %+v\nwant %+v", back[0].Mutants, pkgs[0].Mutants)
	}
}

func TestAdjustedFigures(t *testing.T) {
	p := Package{Killed: 10, Lived: 2, NotCovered: 6, Mutants: []Mutant{
		{Status: "LIVED", File: "a.go", Type: "X", Code: "a"},
		{Status: "LIVED", File: "a.go", Type: "X", Code: "b"},
		{Status: "NOT COVERED", File: "a.go", Type: "X", Code: "c"},
		{Status: "NOT COVERED", Blind: true, Run: "KILLED", File: "a.go", Type: "X", Code: "d"},
		{Status: "NOT COVERED", Blind: true, Run: "LIVED", File: "a.go", Type: "X", Code: "e"},
		{Status: "NOT COVERED", Blind: true, Run: "TIMED OUT", File: "a.go", Type: "X", Code: "f"},
		{Status: "NOT COVERED", Blind: true, Run: "NOT VIABLE", File: "a.go", Type: "X", Code: "g"},
		{Status: "NOT COVERED", Blind: true, File: "a.go", Type: "X", Code: "h"},
	}}
	eqs := []Equivalent{
		{Package: "p", File: "a.go", Type: "X", Code: "a"},
		{Package: "p", File: "a.go", Type: "X", Code: "e"}, // a blind mutant that lived when run
		{Package: "p", File: "a.go", Type: "X", Code: "c"}, // not covered: never equivalent
	}
	p.Path = "p"
	eq := equivalentCount(p, eqs)
	if eq != 2 {
		t.Fatalf("equivalent = %d, want 2 (a and e)", eq)
	}
	eff, cov, effOK, covOK := p.Adjusted(eq)
	// killed 10 + 1 blind; lived 2 + 1 blind - 2 equivalent; not covered 6 - 4 run.
	if !effOK || !covOK || fmt.Sprintf("%.2f %.2f", eff, cov) != "91.67 87.50" {
		t.Fatalf("Adjusted = %.2f%% %.2f%% (%v %v), want 91.67%% (11/12) and 87.50%% (14/16)", eff, cov, effOK, covOK)
	}
	if p.blindCount() != 5 {
		t.Fatalf("blind = %d, want 5", p.blindCount())
	}
	// Rendered and read back, the runs survive.
	p.Date, p.Database = "d", "—"
	back, err := ParseSection(Section([]Package{p}, eqs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back[0].Mutants, p.Mutants) {
		t.Fatalf("parsed back:\n got %+v\nwant %+v", back[0].Mutants, p.Mutants)
	}
}

func TestApplyMutant(t *testing.T) {
	src := []byte("package p\n\nfunc f(a, b int) int {\n\tif a <= b && b != 0 {\n\t\ta++\n\t}\n\treturn -a * b\n}\n")
	for _, tc := range []struct {
		line, col int
		typ, want string
	}{
		{4, 7, "CONDITIONALS_BOUNDARY", "\tif a < b && b != 0 {"},
		{4, 7, "CONDITIONALS_NEGATION", "\tif a > b && b != 0 {"},
		{4, 12, "INVERT_LOGICAL", "\tif a <= b || b != 0 {"},
		{4, 17, "CONDITIONALS_NEGATION", "\tif a <= b && b == 0 {"},
		{5, 4, "INCREMENT_DECREMENT", "\t\ta--"},
		{7, 9, "INVERT_NEGATIVES", "\treturn +a * b"},
		{7, 12, "ARITHMETIC_BASE", "\treturn -a / b"},
	} {
		out, err := applyMutant(src, tc.line, tc.col, tc.typ)
		if err != nil {
			t.Errorf("%d:%d %s: %v", tc.line, tc.col, tc.typ, err)
			continue
		}
		lines := strings.Split(string(out), "\n")
		if lines[tc.line-1] != tc.want {
			t.Errorf("%d:%d %s: line = %q, want %q", tc.line, tc.col, tc.typ, lines[tc.line-1], tc.want)
		}
		if strings.Count(string(out), "\n") != strings.Count(string(src), "\n") || len(out) > len(src)+1 || len(out) < len(src)-1 {
			t.Errorf("%d:%d %s: more than the token changed:\n%s", tc.line, tc.col, tc.typ, out)
		}
	}
	for _, tc := range []struct {
		line, col int
		typ       string
	}{
		{4, 8, "CONDITIONALS_BOUNDARY"}, // inside a token
		{4, 7, "ARITHMETIC_BASE"},       // does not apply to <=
		{4, 7, "NO_SUCH_MUTATOR"},
		{99, 1, "ARITHMETIC_BASE"}, // past the end
	} {
		if _, err := applyMutant(src, tc.line, tc.col, tc.typ); err == nil {
			t.Errorf("%d:%d %s: applied", tc.line, tc.col, tc.typ)
		}
	}
}

func TestTestStatus(t *testing.T) {
	exit1 := exec.Command("sh", "-c", "exit 1").Run()
	for _, tc := range []struct {
		ctxErr, runErr error
		out, want      string
	}{
		{context.DeadlineExceeded, exit1, "", "TIMED OUT"},
		{nil, nil, "ok", "LIVED"},
		{nil, exit1, "FAIL p [build failed]", "NOT VIABLE"},
		{nil, exit1, "FAIL p [setup failed]", "NOT VIABLE"},
		{nil, exit1, "--- FAIL: TestX", "KILLED"},
		{nil, errors.New("exec: go: not found"), "", "NOT VIABLE"},
	} {
		if got := testStatus(tc.ctxErr, tc.runErr, tc.out); got != tc.want {
			t.Errorf("testStatus(%v, %v, %q) = %s, want %s", tc.ctxErr, tc.runErr, tc.out, got, tc.want)
		}
	}
}

// TestBlindRunner runs blind mutants of blindSrc with its test, in a copy of
// the module: the test kills some and lets others live.
func TestBlindRunner(t *testing.T) {
	root := blindModule(t)
	// The test: g(1) is 3 (h returns 1 * 3, which is not 2).
	test := "package p\n\nimport \"testing\"\n\nfunc TestG(t *testing.T) {\n\tif g(1) != 3 {\n\t\tt.Fatal(g(1))\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(root, "p", "p_test.go"), []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "big-tool"), []byte("not copied"), 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r := &blindRunner{root: root, timeout: time.Minute, log: &log}
	defer r.close()
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOWORK", "off")
	for _, tc := range []struct {
		m    Mutant
		want string
	}{
		// g(1): case 1 <= 0 is false; mutated to 1 > 0 it returns 0.
		{Mutant{File: "p.go", Line: 9, Column: 9, Type: "CONDITIONALS_NEGATION", Code: "case a <= 0:"}, "KILLED"},
		// case a < 0: the same for a = 1.
		{Mutant{File: "p.go", Line: 9, Column: 9, Type: "CONDITIONALS_BOUNDARY", Code: "case a <= 0:"}, "LIVED"},
		// The line is not the one gremlins listed: not run.
		{Mutant{File: "p.go", Line: 9, Column: 9, Type: "CONDITIONALS_BOUNDARY", Code: "case a < 0:"}, ""},
		// A token the mutator does not apply to: not run.
		{Mutant{File: "p.go", Line: 9, Column: 9, Type: "ARITHMETIC_BASE", Code: "case a <= 0:"}, ""},
		{Mutant{File: "missing.go", Line: 1, Column: 1, Type: "ARITHMETIC_BASE"}, ""},
	} {
		if got := r.run("p", tc.m); got != tc.want {
			t.Errorf("run(%+v) = %q, want %q\n%s", tc.m, got, tc.want, log.String())
		}
	}
	if len(r.copies) != 1 {
		t.Fatalf("%d copies for runs one at a time, want 1", len(r.copies))
	}
	work := r.copies[0]
	if _, err := os.Stat(filepath.Join(work, "bin")); !os.IsNotExist(err) {
		t.Errorf("bin/ was copied: %v", err)
	}
	// The copy's file is put back after each run.
	b, err := os.ReadFile(filepath.Join(work, "p", "p.go"))
	if err != nil || string(b) != blindSrc {
		t.Errorf("the copy's p.go was not restored: %v", err)
	}
	if !strings.Contains(log.String(), "KILLED CONDITIONALS_NEGATION at p/p.go:9:9") {
		t.Errorf("log:\n%s", log.String())
	}

	// In parallel, through ParseRun: each run has a copy of its own.
	run := `{"mutants_not_covered": 3, "files": [{"file_name": "p.go", "mutations": [
		{"type": "CONDITIONALS_NEGATION", "status": "NOT COVERED", "line": 9, "column": 9},
		{"type": "CONDITIONALS_BOUNDARY", "status": "NOT COVERED", "line": 9, "column": 9},
		{"type": "CONDITIONALS_NEGATION", "status": "NOT COVERED", "line": 12, "column": 44}]}]}`
	blocks, err := ParseBlocks([]byte("mode: set\nexample.com/m/p/p.go:9.14,10.15 1 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ParseRun(RunInput{Dir: "p", JSON: []byte(run)}, Options{Root: root, Blocks: blocks, RunBlind: r.run, BlindWorkers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range pkgs[0].Mutants {
		got = append(got, fmt.Sprintf("%d:%d %s %s", m.Line, m.Column, m.Type, m.Run))
	}
	want := []string{"9:9 CONDITIONALS_BOUNDARY LIVED", "9:9 CONDITIONALS_NEGATION KILLED", "12:44 CONDITIONALS_NEGATION KILLED"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runs = %q, want %q\n%s", got, want, log.String())
	}
	if len(r.copies) < 2 || len(r.copies) > 3 {
		t.Errorf("%d copies for 3 runs 3 at a time", len(r.copies))
	}
	copies := r.copies
	r.close()
	for _, c := range copies {
		if _, err := os.Stat(c); !os.IsNotExist(err) {
			t.Errorf("copy %s was not removed: %v", c, err)
		}
	}

	// A root that cannot be copied: nothing runs.
	bad := &blindRunner{root: filepath.Join(root, "missing"), timeout: time.Minute, log: &log}
	defer bad.close()
	if got := bad.run("p", Mutant{File: "p.go", Line: 9, Column: 9, Type: "CONDITIONALS_NEGATION", Code: "case a <= 0:"}); got != "" {
		t.Errorf("run without a copy = %q", got)
	}
}
