//go:build !linux

package stripemock

import "syscall"

// sysProcAttr: Pdeathsig is Linux-only; elsewhere Close stops the child.
func sysProcAttr() *syscall.SysProcAttr { return nil }
