package controlplane

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteLogTails writes the last n lines of each non-empty *.log file in
// logDir (LogDir, or any directory of logs) to w, in name order, each under a
// "---- <name> (last n lines) ----" line. It is for showing why something
// failed before the directory is removed, so unreadable files are skipped
// rather than reported.
func WriteLogTails(w io.Writer, logDir string, n int) {
	logs, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	for _, path := range logs { // Glob sorts
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(w, "---- %s (last %d lines) ----\n%s\n", filepath.Base(path), n, Tail(data, n))
	}
}

// Tail returns the last n lines of data.
func Tail(data []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
