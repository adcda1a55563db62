// Package tools finds the pinned helper binaries the Makefile installs into
// the repository's bin/ (the Temporal CLI, stripe-mock), for paymentsd dev
// and the tests.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Find locates the tool name: the file named by the environment variable
// env if it is set, else bin/<name> in the current directory or any parent
// up to (and including) the directory holding go.mod, else name on $PATH.
// The error says where it looked and how to install it (hint).
func Find(name, env, hint string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if err := CheckExecutable(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w; %s", env, p, err, hint)
		}
		return p, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "bin", name)
			if CheckExecutable(p) == nil {
				return p, nil
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break // module root: do not look above it
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (no $%s, no bin/%s up to the module root, none on $PATH); %s", name, env, name, hint)
}

// CheckExecutable reports whether p is an existing regular file with an
// execute bit set.
func CheckExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}
