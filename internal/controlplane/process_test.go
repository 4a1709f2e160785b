//go:build unix

package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Stop asks with SIGTERM first, and kills (reporting it) only a process
// that does not exit within the grace period.
func TestProcessStop(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "polite.log")
	p, err := StartProcess("polite", "/bin/sh", []string{"-c", "echo started; exec sleep 60"}, log)
	if err != nil {
		t.Fatal(err)
	}
	waitForFile(t, log, "started")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// The shell ignores SIGTERM and so does its child, which inherits the
	// disposition; both are in the process group that Kill hits.
	stubborn, err := StartProcess("stubborn", "/bin/sh", []string{"-c", `trap "" TERM; echo ready; sleep 60 & wait`}, filepath.Join(dir, "stubborn.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitForFile(t, filepath.Join(dir, "stubborn.log"), "ready")
	err = stubborn.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v, want it killed", err)
	}
	select {
	case <-stubborn.Done():
	default:
		t.Error("not done after Stop")
	}
}

func waitForFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q", path, want)
}
