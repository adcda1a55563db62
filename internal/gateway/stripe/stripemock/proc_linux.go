//go:build linux

package stripemock

import "syscall"

// sysProcAttr asks the kernel to SIGKILL stripe-mock if the test process
// dies without calling Close.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
