package manifest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead reads a corpus of the size the CLI must check in 0.3 s: 2,000 files, each a
// headless Service and a StatefulSet (~4,300 documents, ~4.3 MB).
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	if err := GenerateCorpus(dir, 2000, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		docs, err := Read([]string{dir}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(docs) < 4000 {
			b.Fatalf("read %d documents", len(docs))
		}
	}
	// CPU time tells the cost apart from the wait for a core on a busy machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadSerial is BenchmarkRead on one worker: the cost per core.
func BenchmarkReadSerial(b *testing.B) {
	dir := b.TempDir()
	if err := GenerateCorpus(dir, 2000, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Read([]string{dir}, Options{Workers: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadPeakRSS reads the benchmark corpus in a fresh process (this test binary run
// again) and checks the peak resident set size against the CLI's budget of 80 MB.
func TestReadPeakRSS(t *testing.T) {
	if dir := os.Getenv("MANIFEST_RSS_CORPUS"); dir != "" {
		start := time.Now()
		docs, err := Read([]string{dir}, Options{})
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				fmt.Printf("RESULT docs=%d elapsed=%v %s\n", len(docs), elapsed, strings.Join(strings.Fields(line), " "))
			}
		}
		runtime.KeepAlive(docs)
		return
	}
	if testing.Short() {
		t.Skip("generates 2,000 files")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	if err := GenerateCorpus(dir, 2000, 1); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadPeakRSS$")
	cmd.Env = append(os.Environ(), "MANIFEST_RSS_CORPUS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var docs, kb int
	var elapsed, unit string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			fmt.Sscanf(line, "RESULT docs=%d elapsed=%s VmHWM: %d %s", &docs, &elapsed, &kb, &unit)
		}
	}
	t.Logf("read %d documents in %s, peak RSS %d MB (test binary included)", docs, elapsed, kb/1024)
	if docs < 4000 || kb == 0 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	if kb > 80*1024 {
		t.Errorf("peak RSS %d MB is over the 80 MB budget", kb/1024)
	}
}
