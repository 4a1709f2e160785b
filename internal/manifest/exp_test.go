package manifest

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

func TestExpParse(t *testing.T) {
	dir := "/tmp/corpus"
	if _, err := os.Stat(dir); err != nil {
		if err := GenerateCorpus(dir, 2000, 1); err != nil {
			t.Fatal(err)
		}
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	total := 0
	for _, f := range files {
		st, _ := os.Stat(f)
		total += int(st.Size())
	}
	t.Logf("files %d bytes %d", len(files), total)
	for r := 0; r < 3; r++ {
		start := time.Now()
		var wg sync.WaitGroup
		ch := make(chan string, len(files))
		for _, f := range files {
			ch <- f
		}
		close(ch)
		nodes := make([][]*yaml.Node, runtime.GOMAXPROCS(0))
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for f := range ch {
					data, _ := os.ReadFile(f)
					dec := yaml.NewDecoder(bytesReader(data))
					for {
						var n yaml.Node
						if err := dec.Decode(&n); err != nil {
							break
						}
						nodes[w] = append(nodes[w], &n)
					}
				}
			}(w)
		}
		wg.Wait()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("parse %v heapinuse %dMB total alloc %dMB", time.Since(start), ms.HeapInuse>>20, ms.TotalAlloc>>20)
		runtime.KeepAlive(nodes)
	}
}
