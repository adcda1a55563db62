//go:build linux

package devserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group (so signals reach
// everything it spawns and a Ctrl-C in the terminal is not delivered to it
// directly) and asks the kernel to SIGKILL it if the parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

func killGroup(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }
