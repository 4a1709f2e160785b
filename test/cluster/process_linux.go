package cluster

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// childProcAttr makes a child process die with the test binary, even when
// the binary dies before its cleanups run (Ctrl-C, `go test -timeout`).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// startReaper covers the processes envtest starts (which it starts without a
// parent-death signal): it finds this process's children whose command line
// contains one of marks and starts a watchdog shell that SIGKILLs them as
// soon as this process dies without calling the returned disarm (its pipe
// then reads EOF). The watchdog has its own process group, so a Ctrl-C in the
// terminal does not kill it along with the test binary. Best effort: any
// error just means no watchdog.
func startReaper(marks ...string) (disarm func()) {
	pids := childrenMatching(marks)
	if len(pids) == 0 {
		return func() {}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	defer r.Close()
	args := []string{"-c", `if read -r _; then exit 0; fi; kill -9 "$@" 2>/dev/null`, "stateguard-cluster-reaper"}
	args = append(args, pids...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return func() {}
	}
	go func() { _ = cmd.Wait() }()
	return func() {
		_, _ = w.WriteString("done\n")
		_ = w.Close()
	}
}

func childrenMatching(marks []string) []string {
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []string
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
		if err != nil {
			continue
		}
		for _, m := range marks {
			if m != "" && bytes.Contains(cmdline, []byte(m)) {
				pids = append(pids, filepath.Base(filepath.Dir(stat)))
				break
			}
		}
	}
	return pids
}
