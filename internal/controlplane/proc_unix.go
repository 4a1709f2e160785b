//go:build unix

package controlplane

import "syscall"

// signalGroup signals the process group led by pid (children started by
// StartProcess and by envtest lead their own groups).
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

// killGroup SIGKILLs the process group led by pid, and pid itself in case it
// leads none.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
