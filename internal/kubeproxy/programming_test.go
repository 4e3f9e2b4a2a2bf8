package kubeproxy

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func page(counts ...int) string {
	bounds := []string{"0", "0.25", "0.5", "1", "2", "+Inf"}
	var b strings.Builder
	b.WriteString("# HELP kubeproxy_network_programming_duration_seconds In Cluster Network Programming Latency in seconds\n")
	b.WriteString("# TYPE kubeproxy_network_programming_duration_seconds histogram\n")
	for i, le := range bounds {
		b.WriteString(`kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="` + le + `"} `)
		b.WriteString(strconv.Itoa(counts[i]) + "\n")
	}
	b.WriteString("kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"} " + strconv.Itoa(counts[len(counts)-1]) + "\n")
	b.WriteString("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.001\"} 99\n")
	return b.String()
}

func TestProgrammingSinceAndQuantiles(t *testing.T) {
	before, err := ParseProgramming(strings.NewReader(page(0, 1, 2, 3, 3, 3)))
	require.NoError(t, err)
	after, err := ParseProgramming(strings.NewReader(page(0, 1, 4, 8, 9, 9)))
	require.NoError(t, err)
	d, err := after.Since(before)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), d.Count(), "six changes between the reads")
	assert.Equal(t, 500*time.Millisecond, d.Quantile(0.25), "2 of 6 within 0.5 s")
	assert.Equal(t, time.Second, d.Quantile(0.5), "the median's bucket ends at 1 s")
	assert.Equal(t, 2*time.Second, d.Quantile(0.99))
	assert.Equal(t, time.Duration(0), (Programming{}).Quantile(0.5))
	late, err := ParseProgramming(strings.NewReader(page(0, 0, 0, 0, 1, 2)))
	require.NoError(t, err)
	assert.Equal(t, time.Duration(math.MaxInt64), late.Quantile(0.99), "past the last finite bound: no upper bound")

	_, err = before.Since(after)
	assert.ErrorContains(t, err, "went down", "a restarted kube-proxy is not read as negative changes")
	_, err = ParseProgramming(strings.NewReader("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"1\"} 3\n"))
	assert.ErrorContains(t, err, "no kubeproxy_network_programming_duration_seconds", "a page without the histogram")
}
