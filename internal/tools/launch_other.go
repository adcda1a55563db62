//go:build !linux

package tools

import "os/exec"

// tieToParent has no portable equivalent of Linux's Pdeathsig.
func tieToParent(*exec.Cmd) {}
