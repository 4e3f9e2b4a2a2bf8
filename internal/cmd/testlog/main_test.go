package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A go test -json stream: one test passes, one is skipped with a reason, one fails, TestMain prints a
// figure, and a build error comes as plain text.
const stream = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestOK"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"    ok_test.go:9: quiet detail\n"}
{"Action":"pass","Package":"p","Test":"TestOK"}
{"Action":"run","Package":"p","Test":"TestGuard"}
{"Action":"output","Package":"p","Test":"TestGuard","Output":"=== RUN   TestGuard\n"}
{"Action":"output","Package":"p","Test":"TestGuard","Output":"    smoke_test.go:214: KUBECONFIG names another cluster\n"}
{"Action":"output","Package":"p","Test":"TestGuard","Output":"--- SKIP: TestGuard (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestGuard"}
{"Action":"run","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"    bad_test.go:3: want 1, got 2\n"}
{"Action":"fail","Package":"p","Test":"TestBad"}
{"Action":"run","Package":"p","Test":"TestLong"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"=== RUN   TestLong\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:1: line 1\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:2: line 2\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:3: line 3\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:4: line 4\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:5: line 5\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:6: line 6\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:7: line 7\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:8: line 8\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:9: line 9\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    long_test.go:10: line 10\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"    kube.go:123: --- namespace long-x\n        pod a node=n1 phase=Running\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"        event 18:33:13 Pod/a Created: Created container: app\n"}
{"Action":"output","Package":"p","Test":"TestLong","Output":"--- FAIL: TestLong (1.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestLong"}
{"Action":"output","Package":"p","Output":"local cluster: 2 node(s), started in 21s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}
{"Action":"fail","Package":"p"}
# q
q/x.go:1: syntax error
`

func TestFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		verbose         bool
		shown, notShown []string
	}{
		{"quiet", false, []string{"want 1, got 2", "KUBECONFIG names another cluster", "started in 21s", "FAIL\tp", "syntax error"}, []string{"quiet detail"}},
		{"verbose", true, []string{"quiet detail", "want 1, got 2", "started in 21s", "syntax error"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, rec bytes.Buffer
			assert.Positive(t, filter(strings.NewReader(stream), &out, &rec, "smoke", tc.verbose), "the results are counted")
			for _, s := range tc.shown {
				assert.Contains(t, out.String(), s)
			}
			for _, s := range tc.notShown {
				assert.NotContains(t, out.String(), s)
			}
			var got []Record
			for _, l := range strings.Split(strings.TrimSpace(rec.String()), "\n") {
				var r Record
				require.NoError(t, json.Unmarshal([]byte(l), &r))
				got = append(got, r)
			}
			assert.Equal(t, []Record{
				{Suite: "smoke", Package: "p", Test: "TestOK", Result: "pass"},
				{Suite: "smoke", Package: "p", Test: "TestGuard", Result: "skip", Reason: "smoke_test.go:214: KUBECONFIG names another cluster"},
				{Suite: "smoke", Package: "p", Test: "TestBad", Result: "fail", Last: []string{"bad_test.go:3: want 1, got 2"}},
				{Suite: "smoke", Package: "p", Test: "TestLong", Result: "fail", Last: []string{
					"long_test.go:3: line 3", "long_test.go:4: line 4", "long_test.go:5: line 5", "long_test.go:6: line 6",
					"long_test.go:7: line 7", "long_test.go:8: line 8", "long_test.go:9: line 9", "long_test.go:10: line 10"}},
			}, got)
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		lines  []Record
		status int
		want   []string
	}{
		{"a skip is listed with its reason, not counted as passed", []Record{
			{Suite: "render", Test: "TestA", Result: "pass"},
			{Suite: "smoke", Test: "TestGuard", Result: "skip", Reason: "KUBECONFIG names another cluster"},
		}, 0, []string{"skipped (1), not counted as passed:", "smoke TestGuard: KUBECONFIG names another cluster", "tests: 1 passed, 0 failed, 1 skipped"}},
		{"a failure fails the summary", []Record{
			{Suite: "unit", Test: "TestA", Result: "pass"},
			{Suite: "unit", Test: "TestB", Result: "fail", Last: []string{"b_test.go:7: 38 request(s) refused"}},
		}, 1, []string{"failed (1):", "unit TestB", "    its last lines:\n      b_test.go:7: 38 request(s) refused\n", "skipped: none", "tests: 1 passed, 1 failed, 0 skipped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			for _, r := range tc.lines {
				require.NoError(t, enc.Encode(r))
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
			var out bytes.Buffer
			assert.Equal(t, tc.status, summarize(path, &out))
			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

// A run in which no test ran (a -run pattern that matched nothing) reports no result: main fails it.
func TestNoTestRan(t *testing.T) {
	var out, rec bytes.Buffer
	stream := `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Output":"testing: warning: no tests to run\n"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"pass","Package":"p"}
`
	assert.Zero(t, filter(strings.NewReader(stream), &out, &rec, "e2e", false))
	assert.Empty(t, rec.String())
}
