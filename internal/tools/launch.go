package tools

import (
	"os/exec"
	"runtime"
)

// Launch starts cmd so that it never outlives this process and calls
// onExit with cmd.Wait's result when it exits.
//
// On Linux the child gets Pdeathsig=SIGKILL, which the kernel delivers when
// the *thread* that forked it exits, not the process. The Go runtime may
// retire idle threads, so the child is started from a goroutine locked to
// its OS thread, and that goroutine (and thus the thread) stays in Wait for
// the child's whole life. Elsewhere the caller must stop the child itself.
func Launch(cmd *exec.Cmd, onExit func(error)) error {
	tieToParent(cmd)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		onExit(cmd.Wait())
	}()
	return <-started
}
