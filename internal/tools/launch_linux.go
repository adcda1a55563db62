//go:build linux

package tools

import (
	"os/exec"
	"syscall"
)

// tieToParent asks the kernel to SIGKILL the child if its parent dies.
func tieToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
