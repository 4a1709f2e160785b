package controlplane

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childProcAttr puts a child in its own process group and has the kernel
// SIGKILL it if this program dies before stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startReaper covers processes started without a parent-death signal
// (envtest's): a watchdog shell, in its own process group, SIGKILLs their
// process groups as soon as this program dies without calling the returned
// disarm (its stdin pipe then reads EOF). Best effort: any error just means
// no watchdog. disarm waits briefly for the watchdog to exit.
func startReaper(pids []int) (disarm func()) {
	if len(pids) == 0 {
		return func() {}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	defer r.Close()
	args := []string{"-c", `if read -r _; then exit 0; fi; for p in "$@"; do kill -9 "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done`, "stateguard-controlplane-reaper"}
	for _, pid := range pids {
		args = append(args, strconv.Itoa(pid))
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return func() {}
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return func() {
		_, _ = w.WriteString("done\n")
		_ = w.Close()
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
		}
	}
}

// childrenMatching returns the pids of this process's children whose command
// line contains mark.
func childrenMatching(mark string) []int {
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, stat := range stats {
		data, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) < 2 || fields[1] != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(filepath.Dir(stat), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(mark)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(stat))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
