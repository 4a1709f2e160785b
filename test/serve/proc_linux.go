package serve

import "syscall"

// childProcAttr puts a child in its own process group (a Ctrl-C in the
// terminal reaches only the test binary) and has the kernel kill it if the
// test binary dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
