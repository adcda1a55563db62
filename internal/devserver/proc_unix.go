//go:build unix

package devserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group, so that signals reach
// everything it spawns and a Ctrl-C in the terminal is not delivered to it
// directly. (tools.Launch also ties it to this process on Linux.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

func killGroup(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }
