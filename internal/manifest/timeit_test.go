package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestTimeCorpus(t *testing.T) {
	dir := os.Getenv("FUZZDIR")
	if dir == "" {
		t.Skip()
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		lines := bytes.SplitN(raw, []byte("\n"), 3)
		s, err := strconv.Unquote(string(bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))))
		if err != nil {
			t.Log(f, err)
			continue
		}
		start := time.Now()
		docs, err := Read([]string{"-"}, Options{Stdin: bytes.NewReader([]byte(s))})
		t.Logf("%s %v docs=%d len=%d err=%.100v", filepath.Base(f), time.Since(start), len(docs), len(s), err)
	}
}
