//go:build !linux

package cluster

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }

func startReaper(...string) (disarm func()) { return func() {} }
