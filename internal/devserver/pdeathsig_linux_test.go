//go:build linux

package devserver

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const helperEnv = "DEVSERVER_TEST_PDEATHSIG_HELPER"

// TestPdeathsigHelper is not a test: TestPdeathsig re-runs the test binary
// with helperEnv set, and this then plays the parent that gets SIGKILLed.
func TestPdeathsigHelper(t *testing.T) {
	script := os.Getenv(helperEnv)
	if script == "" {
		return // normal test run: nothing to do
	}
	s := &Server{
		cmd:  exec.Command(script),
		log:  slog.New(slog.DiscardHandler),
		tail: newTailWriter(tailLines),
		done: make(chan struct{}),
	}
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.launch(); err != nil {
		t.Fatal(err)
	}
	<-s.done // until the parent test kills us
}

// TestPdeathsig checks that the child dies with its parent even when the
// parent is SIGKILLed and has no chance to call Stop.
func TestPdeathsig(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := writeScript(t, `echo $$ > `+pidFile+`.tmp && mv `+pidFile+`.tmp `+pidFile+`
exec sleep 600`)

	helper := exec.Command(os.Args[0], "-test.run=^TestPdeathsigHelper$", "-test.count=1")
	helper.Env = append(os.Environ(), helperEnv+"="+script)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	var pid string
	eventually(t, 30*time.Second, "the grandchild to write its pid", func() bool {
		b, err := os.ReadFile(pidFile)
		pid = strings.TrimSpace(string(b))
		return err == nil && pid != ""
	})
	if !alive(pid) {
		t.Fatalf("grandchild %s not running before the parent was killed", pid)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	eventually(t, 10*time.Second, "the orphaned child to be killed by Pdeathsig", func() bool {
		return !alive(pid)
	})
}

// alive reports whether pid runs and is not a zombie.
func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
