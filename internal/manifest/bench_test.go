package manifest

import (
	"runtime"
	"testing"
)

// BenchmarkRead reads a corpus of the size the CLI must check in 0.3 s: 2,000 files, each a
// headless Service and a StatefulSet (~4,300 documents, ~4.3 MB).
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	if err := GenerateCorpus(dir, 2000, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		docs, err := Read([]string{dir}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(docs) < 4000 {
			b.Fatalf("read %d documents", len(docs))
		}
	}
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
	_ = runtime.GOMAXPROCS(0)
}
