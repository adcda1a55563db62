//go:build !unix

package devserver

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing portable to set outside Unix.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate cannot send SIGTERM outside Unix; it kills the process.
func terminate(p *os.Process) error { return p.Kill() }

func killGroup(p *os.Process) error { return p.Kill() }
