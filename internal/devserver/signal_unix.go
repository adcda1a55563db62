//go:build unix

package devserver

import (
	"errors"
	"os"
	"syscall"
)

// signalGroup sends sig to the process group led by p (the child was
// started with Setpgid, so its pgid is its pid).
func signalGroup(p *os.Process, sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
