//go:build unix && !linux

package devserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group. Pdeathsig is
// Linux-only; elsewhere the child is stopped by Stop (and by the signal
// handling of paymentsd).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

func killGroup(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }
