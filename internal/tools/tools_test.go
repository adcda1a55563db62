package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(bin, "mytool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	t.Setenv("PATH", "")
	t.Setenv("MYTOOL", "")
	if got, err := Find("mytool", "MYTOOL", "hint"); err != nil || got != tool {
		t.Fatalf("Find from a subdirectory = %q, %v; want %q", got, err, tool)
	}
	t.Setenv("MYTOOL", filepath.Join(root, "go.mod")) // not executable
	if _, err := Find("mytool", "MYTOOL", "install it with make tools"); err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("a non-executable override: %v", err)
	}
	t.Setenv("MYTOOL", "")
	if _, err := Find("othertool", "OTHER", "install it"); err == nil || !strings.Contains(err.Error(), "bin/othertool") {
		t.Fatalf("a missing tool: %v", err)
	}
}
