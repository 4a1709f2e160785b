//go:build !linux

package serve

import "syscall"

// childProcAttr: nothing special off Linux (the tests that start processes
// run on Linux).
func childProcAttr() *syscall.SysProcAttr { return nil }
