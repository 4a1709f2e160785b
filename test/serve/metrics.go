package serve

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Sample is one series of a Prometheus text exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed /metrics page.
type Metrics []Sample

// Scrape reads /metrics, failing the test on error.
func (s *Server) Scrape(t testing.TB) Metrics {
	t.Helper()
	m, err := s.ScrapeErr()
	if err != nil {
		t.Fatalf("scraping %s/metrics: %v", s.MetricsAddr, err)
	}
	return m
}

// ScrapeErr reads /metrics.
func (s *Server) ScrapeErr() (Metrics, error) {
	resp, err := s.http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// Metric scrapes /metrics and returns the sum of the series of name whose
// labels match every "key=value" in match (see Metrics.Sum).
func (s *Server) Metric(t testing.TB, name string, match ...string) float64 {
	t.Helper()
	return s.Scrape(t).Sum(name, match...)
}

// ParseMetrics parses the Prometheus text format (what /metrics serves
// without content negotiation): one `name{k="v",...} value` a line;
// comments, timestamps and exemplars are skipped.
func ParseMetrics(r io.Reader) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		smp, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		out = append(out, smp)
	}
	return out, sc.Err()
}

func parseSample(line string) (Sample, error) {
	smp := Sample{Labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return smp, fmt.Errorf("no value")
	} else {
		smp.Name, rest = line[:i], line[i:]
	}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return smp, fmt.Errorf("bad labels")
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			i := 0
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					switch rest[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[i])
					}
					continue
				}
				val.WriteByte(rest[i])
			}
			if i == len(rest) {
				return smp, fmt.Errorf("unterminated label value")
			}
			smp.Labels[key] = val.String()
			rest = rest[i+1:]
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return smp, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return smp, err
	}
	smp.Value = v
	return smp, nil
}

// matches reports whether the sample's labels hold every "key=value".
func (smp Sample) matches(match []string) bool {
	for _, m := range match {
		k, v, _ := strings.Cut(m, "=")
		if got, ok := smp.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Sum adds up the series of name whose labels hold every "key=value" of
// match (none: every series of name).
func (m Metrics) Sum(name string, match ...string) float64 {
	var sum float64
	for _, smp := range m {
		if smp.Name == name && smp.matches(match) {
			sum += smp.Value
		}
	}
	return sum
}

// Has reports whether any series of name matches.
func (m Metrics) Has(name string, match ...string) bool {
	for _, smp := range m {
		if smp.Name == name && smp.matches(match) {
			return true
		}
	}
	return false
}

// By sums the series of name that match, grouped by the value of label.
func (m Metrics) By(name, label string, match ...string) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range m {
		if smp.Name == name && smp.matches(match) {
			out[smp.Labels[label]] += smp.Value
		}
	}
	return out
}
