package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRerun runs again what did not die in a report, with a test added
// since: a lived mutant it kills becomes KILLED, one it does not stays
// LIVED, a killed one is not run, a NOT COVERED one outside the covered
// blocks stays as it is; the totals and figures follow, other fields stay.
func TestRerun(t *testing.T) {
	root := blindModule(t)
	test := "package p\n\nimport \"testing\"\n\nfunc TestG(t *testing.T) {\n\tif g(1) != 3 {\n\t\tt.Fatal(g(1))\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(root, "p", "p_test.go"), []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOWORK", "off")
	report := `{"go_module": "example.com/m", "elapsed_time": 12.5, "mutants_killed": 1, "mutants_lived": 2,
		"mutants_not_covered": 2, "mutants_total": 3, "test_efficacy": 33.3, "mutations_coverage": 60,
		"files": [{"file_name": "p.go", "mutations": [
		{"type": "CONDITIONALS_NEGATION", "status": "KILLED", "line": 9, "column": 9},
		{"type": "CONDITIONALS_BOUNDARY", "status": "LIVED", "line": 9, "column": 9},
		{"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 12, "column": 44},
		{"type": "ARITHMETIC_BASE", "status": "NOT COVERED", "line": 10, "column": 12},
		{"type": "CONDITIONALS_NEGATION", "status": "NOT COVERED", "line": 12, "column": 44}]}]}`
	covered, err := ParseCovered([]byte("mode: set\nexample.com/m/p/p.go:12.2,12.50 1 1\nexample.com/m/p/p.go:10.3,10.15 1 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r := &blindRunner{root: root, timeout: time.Minute, log: &log}
	defer r.close()
	var ran []string
	run := func(pkgPath string, m Mutant) string {
		ran = append(ran, m.Status+" "+m.Type)
		return r.run(pkgPath, m)
	}
	out, err := Rerun([]byte(report), root, "p", covered, run, 1)
	if err != nil {
		t.Fatalf("Rerun: %v\n%s", err, log.String())
	}
	if want := []string{"LIVED CONDITIONALS_BOUNDARY", "LIVED CONDITIONALS_NEGATION", "NOT COVERED CONDITIONALS_NEGATION"}; strings.Join(ran, ",") != strings.Join(want, ",") {
		t.Errorf("ran %q, want %q", ran, want)
	}
	var doc struct {
		Module     string  `json:"go_module"`
		Elapsed    float64 `json:"elapsed_time"`
		Killed     int     `json:"mutants_killed"`
		Lived      int     `json:"mutants_lived"`
		NotCovered int     `json:"mutants_not_covered"`
		Total      int     `json:"mutants_total"`
		Efficacy   float64 `json:"test_efficacy"`
		Coverage   float64 `json:"mutations_coverage"`
		Files      []struct {
			Mutations []struct {
				Status string `json:"status"`
			} `json:"mutations"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, m := range doc.Files[0].Mutations {
		statuses = append(statuses, m.Status)
	}
	if want := "KILLED,LIVED,KILLED,NOT COVERED,KILLED"; strings.Join(statuses, ",") != want {
		t.Errorf("statuses %s, want %s", strings.Join(statuses, ","), want)
	}
	if doc.Module != "example.com/m" || doc.Elapsed != 12.5 || doc.Killed != 3 || doc.Lived != 1 || doc.NotCovered != 1 ||
		doc.Total != 4 || doc.Efficacy != 75 || doc.Coverage != 80 {
		t.Errorf("totals %+v", doc)
	}
	// The result is a report ParseRun accepts.
	if _, err := ParseRun(RunInput{Dir: "p", JSON: out}, Options{Root: root}); err != nil {
		t.Errorf("ParseRun of the rerun report: %v", err)
	}

	// Code changed since gremlins ran: refused, not silently counted.
	changed := strings.Replace(report, `"line": 12, "column": 44}, {"type": "ARITHMETIC_BASE"`, `"line": 13, "column": 44}, {"type": "ARITHMETIC_BASE"`, 1)
	changed = strings.Replace(changed, `{"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 12`, `{"type": "CONDITIONALS_NEGATION", "status": "LIVED", "line": 13`, 1)
	if _, err := Rerun([]byte(changed), root, "p", covered, r.run, 1); err == nil || !strings.Contains(err.Error(), "could not be run again") {
		t.Errorf("Rerun of a report of other code: %v", err)
	}
	if _, err := Rerun([]byte("not json"), root, "p", covered, r.run, 1); err == nil {
		t.Error("Rerun of a broken report: no error")
	}
}

func TestParseCoveredKeepsOnlyBlocksThatRan(t *testing.T) {
	bs, err := ParseCovered([]byte("mode: set\nm/p/p.go:1.1,2.2 1 0\nm/p/p.go:3.1,4.2 1 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if bs.contains("p/p.go", 1, 5) || !bs.contains("p/p.go", 3, 5) {
		t.Errorf("covered blocks %+v", bs)
	}
	if _, err := ParseCovered([]byte("m/p/p.go:x")); err == nil {
		t.Error("a broken profile: no error")
	}
}
