// Command benchcli times `stateguard check -o json` over a generated corpus:
// whole-process wall time and peak RSS, the figures the CLI's targets are set
// in. Run it through `make bench-cli`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/stateguard/stateguard/internal/manifest"
)

func main() {
	bin := flag.String("bin", "bin/stateguard", "stateguard binary")
	files := flag.Int("files", 2000, "files in the corpus (each a headless Service + a StatefulSet)")
	runs := flag.Int("runs", 10, "timed runs (after one warm-up)")
	scale := flag.Int("scale", 10, "also time a corpus this many times larger (0: skip), to show growth is linear")
	flag.Parse()

	base := measure(*bin, *files, *runs)
	if *scale > 1 {
		big := measure(*bin, *files**scale, max(*runs/3, 3))
		fmt.Printf("growth: %dx the input took %.2fx the time (median)\n", *scale, big.Seconds()/base.Seconds())
	}
}

// measure generates a corpus, runs the binary over it and prints the figures;
// it returns the median wall time.
func measure(bin string, files, runs int) time.Duration {
	dir, err := os.MkdirTemp("", "stateguard-bench-")
	must(err)
	defer os.RemoveAll(dir)
	must(manifest.GenerateCorpus(dir, files, 1))
	size, docs := corpusSize(dir)

	var walls []time.Duration
	var peak int64
	for i := 0; i <= runs; i++ {
		cmd := exec.Command(bin, "check", "-o", "json", dir)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if exit, ok := err.(*exec.ExitError); !ok && err != nil || ok && exit.ExitCode() > 1 {
			fmt.Fprintf(os.Stderr, "benchcli: %s check failed: %v\n", bin, err)
			os.Exit(1)
		}
		if i == 0 {
			continue // warm-up: page cache, binary load
		}
		walls = append(walls, wall)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
			peak = ru.Maxrss
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	median := walls[len(walls)/2]
	fmt.Printf("corpus: %d files, ~%d documents, %.1f MB\n", files, docs, float64(size)/1e6)
	fmt.Printf("  wall: min %s, median %s, max %s over %d runs; peak RSS %.1f MB\n",
		walls[0].Round(time.Millisecond), median.Round(time.Millisecond), walls[len(walls)-1].Round(time.Millisecond), len(walls), float64(peak)/1024)
	return median
}

func corpusSize(dir string) (bytes int64, docs int) {
	must(filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		bytes += info.Size()
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		docs++
		for i := 0; i+3 < len(data); i++ {
			if data[i] == '\n' && data[i+1] == '-' && data[i+2] == '-' && data[i+3] == '-' {
				docs++
			}
		}
		return nil
	}))
	return bytes, docs
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcli:", err)
		os.Exit(1)
	}
}
