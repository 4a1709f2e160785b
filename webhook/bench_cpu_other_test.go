//go:build !linux

package webhook

import "time"

// benchProcessCPU is not measured outside Linux; cpu-ns/op then reads 0.
func benchProcessCPU() time.Duration { return 0 }
