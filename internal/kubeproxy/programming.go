package kubeproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ProgrammingMetric is kube-proxy's histogram of network programming latency: for each endpoint change,
// the time from the change (the EndpointSlice's last-change-trigger-time) to the node's rules carrying
// it. It is the propagation lag a preStop delay has to outlast, as this node measured it.
const ProgrammingMetric = "kubeproxy_network_programming_duration_seconds"

// MetricsPort is kube-proxy's metrics port (metricsBindAddress, 127.0.0.1:10249 by default).
const MetricsPort = 10249

// Programming is that histogram as read at one moment, summed over its IP families: cumulative counts
// per upper bound (seconds, ascending, +Inf last).
type Programming struct {
	Bounds []float64
	Counts []uint64
}

// ReadProgramming fetches a kube-proxy's metrics page (e.g. http://127.0.0.1:10249/metrics) and parses
// the histogram.
func ReadProgramming(ctx context.Context, url string) (Programming, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Programming{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Programming{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Programming{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return ParseProgramming(resp.Body)
}

// ParseProgramming reads the histogram's buckets from a Prometheus text page. A page without it is an
// error: the kube-proxy is not one that measures network programming.
func ParseProgramming(r io.Reader) (Programming, error) {
	counts := map[float64]uint64{}
	prefix := ProgrammingMetric + "_bucket{"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			return Programming{}, fmt.Errorf("%s: bad line %q", ProgrammingMetric, line)
		}
		le, ok := label(line[len(prefix):end], "le")
		if !ok {
			return Programming{}, fmt.Errorf("%s: a bucket without le: %q", ProgrammingMetric, line)
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			return Programming{}, fmt.Errorf("%s: le %q: %w", ProgrammingMetric, le, err)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			return Programming{}, fmt.Errorf("%s: count in %q: %w", ProgrammingMetric, line, err)
		}
		counts[bound] += uint64(n)
	}
	if err := sc.Err(); err != nil {
		return Programming{}, err
	}
	if len(counts) == 0 {
		return Programming{}, fmt.Errorf("no %s on the page", ProgrammingMetric)
	}
	var p Programming
	for b := range counts {
		p.Bounds = append(p.Bounds, b)
	}
	slices.Sort(p.Bounds)
	for _, b := range p.Bounds {
		p.Counts = append(p.Counts, counts[b])
	}
	return p, nil
}

// label returns the value of one label of a `k="v",k2="v2"` list.
func label(labels, name string) (string, bool) {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Trim(strings.TrimSpace(v), `"`), true
		}
	}
	return "", false
}

// Since returns what was counted after before (the same kube-proxy read earlier). A histogram that went
// down (kube-proxy restarted) is an error.
func (p Programming) Since(before Programming) (Programming, error) {
	if !slices.Equal(p.Bounds, before.Bounds) {
		return Programming{}, fmt.Errorf("%s: the buckets changed between the two reads", ProgrammingMetric)
	}
	out := Programming{Bounds: p.Bounds, Counts: make([]uint64, len(p.Counts))}
	for i := range p.Counts {
		if p.Counts[i] < before.Counts[i] {
			return Programming{}, fmt.Errorf("%s went down (kube-proxy restarted?)", ProgrammingMetric)
		}
		out.Counts[i] = p.Counts[i] - before.Counts[i]
	}
	return out, nil
}

// Count is how many endpoint changes the histogram holds.
func (p Programming) Count() uint64 {
	if len(p.Counts) == 0 {
		return 0
	}
	return p.Counts[len(p.Counts)-1]
}

// Quantile returns the upper bound of the bucket that holds the q-quantile (0 for an empty histogram;
// +Inf when it lies past the last finite bound): a histogram says no more than that.
func (p Programming) Quantile(q float64) time.Duration {
	n := p.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	for i, c := range p.Counts {
		if c >= rank {
			if math.IsInf(p.Bounds[i], 1) {
				return time.Duration(math.MaxInt64)
			}
			return time.Duration(p.Bounds[i] * float64(time.Second))
		}
	}
	return time.Duration(math.MaxInt64)
}
