package main

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"sync"
)

// Rerun runs again, with the package tests as they are now, the mutants of
// a gremlins JSON report that did not die: the LIVED and TIMED OUT ones, and
// the NOT COVERED ones that a test reaches now (their position lies in a
// block of covered, a profile of the tests as they are now, that ran). It
// returns the report with their new statuses and gremlins' totals and
// figures recomputed; the other fields are kept as they were.
//
// It stands for a full gremlins run only when the code under test is the
// one gremlins mutated and tests were only added: a KILLED mutant then
// stays killed. make mutate-rerun checks the first (a digest of the
// package's source files); the second is what a rerun is for, killing
// what lived.
func Rerun(raw []byte, root, dir string, covered Blocks, run func(pkgPath string, m Mutant) string, workers int) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a gremlins JSON report: %w", dir, err)
	}
	files, _ := doc["files"].([]any)
	type job struct {
		mutation map[string]any
		pkgPath  string
		m        Mutant
	}
	var jobs []job
	for _, f := range files {
		file, _ := f.(map[string]any)
		name, _ := file["file_name"].(string)
		name = filepath.ToSlash(name)
		pkgPath := path.Join(CleanDir(dir), path.Dir(name))
		src := readSource(filepath.Join(root, filepath.FromSlash(pkgPath), path.Base(name)))
		muts, _ := file["mutations"].([]any)
		for _, x := range muts {
			mu, _ := x.(map[string]any)
			status, _ := mu["status"].(string)
			typ, _ := mu["type"].(string)
			line, _ := mu["line"].(float64)
			col, _ := mu["column"].(float64)
			m := Mutant{Status: status, File: path.Base(name), Line: int(line), Column: int(col), Type: typ, Code: src.line(int(line))}
			switch status {
			case statusLived, statusTimedOut:
			case statusNotCovered:
				if !covered.contains(path.Join(pkgPath, m.File), m.Line, m.Column) {
					continue
				}
			default:
				continue
			}
			jobs = append(jobs, job{mu, pkgPath, m})
		}
	}
	results := make([]string, len(jobs))
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	for i, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = run(j.pkgPath, j.m)
		}()
	}
	wg.Wait()
	for i, j := range jobs {
		if results[i] == "" {
			return nil, fmt.Errorf("%s/%s:%d:%d %s could not be run again: is the code the one gremlins mutated?",
				j.pkgPath, j.m.File, j.m.Line, j.m.Column, j.m.Type)
		}
		j.mutation["status"] = results[i]
	}
	counts := map[string]int{}
	for _, f := range files {
		file, _ := f.(map[string]any)
		muts, _ := file["mutations"].([]any)
		for _, x := range muts {
			mu, _ := x.(map[string]any)
			status, _ := mu["status"].(string)
			counts[status]++
		}
	}
	killed, lived, notCovered := counts[statusKilled], counts[statusLived], counts[statusNotCovered]
	doc["mutants_killed"], doc["mutants_lived"], doc["mutants_not_covered"] = killed, lived, notCovered
	doc["mutants_not_viable"] = counts[statusNotViable]
	doc["mutants_total"] = killed + lived
	doc["test_efficacy"], doc["mutations_coverage"] = 0.0, 0.0
	if killed+lived > 0 {
		doc["test_efficacy"] = 100 * float64(killed) / float64(killed+lived)
	}
	if killed+lived+notCovered > 0 {
		doc["mutations_coverage"] = 100 * float64(killed+lived) / float64(killed+lived+notCovered)
	}
	return json.MarshalIndent(doc, "", "  ")
}
