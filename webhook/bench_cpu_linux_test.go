//go:build linux

package webhook

import (
	"syscall"
	"time"
)

// benchProcessCPU returns the CPU time (user + system) this process has used,
// all threads included (the garbage collector's too). Benchmarks report it per
// op beside ns/op: on a machine shared with other work, wall time per op
// measures the contention as much as the code.
func benchProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
