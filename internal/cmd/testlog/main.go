// Command testlog reads `go test -json` on stdin and prints it for people: with -v every line of output
// (what `go test -v` prints); without, the packages' lines (ok, FAIL, what TestMain prints) and the
// output of the tests that failed or were skipped. It appends one JSON line per test result (pass, fail,
// skip, with a skipped test's reason) to the -record file, which `testlog -summary` turns into the
// closing lines of `make test`: every skipped test with its reason, then the counts.
//
//	go test -json ./... | testlog [-v] -record results/tests.jsonl -suite render
//	testlog -summary results/tests.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Record is one test's result in the -record file.
type Record struct {
	Suite   string `json:"suite"`
	Package string `json:"package"`
	Test    string `json:"test"`
	Result  string `json:"result"`           // pass, fail, skip
	Reason  string `json:"reason,omitempty"` // a skipped test's own words
	// Last are a failed test's last lines of its own output (tailLines of them), so the end of a run
	// says why each test failed without the whole log.
	Last []string `json:"last,omitempty"`
}

// tailLines is how many of a failed test's last lines its record keeps, and tailWidth how much of each.
const (
	tailLines = 8
	tailWidth = 400
)

func main() {
	verbose := flag.Bool("v", false, "print every line of output, as go test -v")
	record := flag.String("record", "", "append one JSON line per test result to this file")
	suite := flag.String("suite", "", "the suite's name in the record")
	summary := flag.String("summary", "", "print the summary of a record file and exit (1 if a test failed)")
	flag.Parse()
	if *summary != "" {
		os.Exit(summarize(*summary, os.Stdout))
	}
	var rec io.Writer = io.Discard
	if *record != "" {
		if err := os.MkdirAll(filepath.Dir(*record), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "testlog:", err)
			os.Exit(2)
		}
		f, err := os.OpenFile(*record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testlog:", err)
			os.Exit(2)
		}
		defer f.Close()
		rec = f
	}
	if filter(os.Stdin, os.Stdout, rec, *suite, *verbose) == 0 {
		// A -run pattern that matches nothing makes go test pass with no test run: nothing was proved.
		fmt.Fprintf(os.Stderr, "testlog: suite %s: no test ran (a -run pattern that matches nothing, or a build failure)\n", *suite)
		os.Exit(1)
	}
}

// filter copies the events' output to out and their results to rec, and returns how many test
// results it saw.
func filter(in io.Reader, out, rec io.Writer, suite string, verbose bool) (results int) {
	outputs := map[string]*strings.Builder{} // package/test -> its output so far
	enc := json.NewEncoder(rec)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintln(out, string(line)) // build errors and anything else that is not an event
			continue
		}
		key := ev.Package + "/" + ev.Test
		switch ev.Action {
		case "output":
			if verbose || ev.Test == "" {
				fmt.Fprint(out, ev.Output)
			}
			if ev.Test != "" { // kept for a failure (printed when quiet) and a skip's reason
				if outputs[key] == nil {
					outputs[key] = &strings.Builder{}
				}
				outputs[key].WriteString(ev.Output)
			}
		case "pass", "fail", "skip":
			if ev.Test == "" {
				continue
			}
			text := ""
			if b := outputs[key]; b != nil {
				text = b.String()
				delete(outputs, key)
			}
			if !verbose && ev.Action != "pass" {
				fmt.Fprint(out, text)
			}
			results++
			r := Record{Suite: suite, Package: ev.Package, Test: ev.Test, Result: ev.Action}
			switch ev.Action {
			case "skip":
				r.Reason = skipReason(text)
			case "fail":
				r.Last = lastLines(text)
			}
			_ = enc.Encode(r)
		}
	}
	return results
}

// skipReason is what a skipped test said, without the lines go test adds around it.
func skipReason(output string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		lines = append(lines, t)
	}
	return strings.Join(lines, " ")
}

// lastLines are the last tailLines lines a test printed itself (not go test's "=== RUN" and "--- FAIL"
// lines, nor its subtests' results), each cut to tailWidth bytes, leaving out the state of a namespace a
// failed test logs as it cleans up (a message whose first line holds stateHeader, and its continuation
// lines): what failed, not the pods and events that follow. A test whose subtests failed prints none of
// its own: its record has none.
func lastLines(output string) []string {
	var lines []string
	skipDeeper := -1 // inside a state message: the indent of its first line
	for _, l := range strings.Split(output, "\n") {
		t := strings.TrimSpace(l)
		indent := len(l) - len(strings.TrimLeft(l, " \t"))
		if skipDeeper >= 0 && (indent > skipDeeper || t == "") {
			continue
		}
		skipDeeper = -1
		if strings.Contains(t, stateHeader) {
			skipDeeper = indent
			continue
		}
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		if len(t) > tailWidth {
			t = t[:tailWidth] + " …"
		}
		lines = append(lines, t)
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return lines
}

// stateHeader begins the state of a namespace (disrupt.Describe): its pods and events, logged when a
// test failed; lastLines leaves it out.
const stateHeader = "--- namespace "

// summarize prints every failed test with its last lines, every skipped test with its reason, then the counts per suite and in all; it returns
// the exit status: 1 if a test failed.
func summarize(path string, out io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(out, "testlog:", err)
		return 2
	}
	type counts struct{ pass, fail, skip int }
	bySuite := map[string]*counts{}
	var total counts
	var skipped, failed []Record
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r Record
		if l == "" || json.Unmarshal([]byte(l), &r) != nil {
			continue
		}
		c := bySuite[r.Suite]
		if c == nil {
			c = &counts{}
			bySuite[r.Suite] = c
		}
		switch r.Result {
		case "pass":
			c.pass++
			total.pass++
		case "fail":
			c.fail++
			total.fail++
			failed = append(failed, r)
		case "skip":
			c.skip++
			total.skip++
			skipped = append(skipped, r)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "failed (%d):\n", len(failed))
		for _, r := range failed {
			fmt.Fprintf(out, "  %s %s (%s)\n", r.Suite, r.Test, r.Package)
			if len(r.Last) > 0 {
				fmt.Fprintf(out, "    its last lines:\n")
			}
			for _, l := range r.Last {
				fmt.Fprintf(out, "      %s\n", l)
			}
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(out, "skipped (%d), not counted as passed:\n", len(skipped))
		for _, r := range skipped {
			fmt.Fprintf(out, "  %s %s: %s\n", r.Suite, r.Test, r.Reason)
		}
	} else {
		fmt.Fprintln(out, "skipped: none")
	}
	suites := make([]string, 0, len(bySuite))
	for s := range bySuite {
		suites = append(suites, s)
	}
	sort.Strings(suites)
	for _, s := range suites {
		c := bySuite[s]
		fmt.Fprintf(out, "  %-10s %5d passed, %d failed, %d skipped\n", s, c.pass, c.fail, c.skip)
	}
	fmt.Fprintf(out, "tests: %d passed, %d failed, %d skipped\n", total.pass, total.fail, total.skip)
	if total.fail > 0 {
		return 1
	}
	return 0
}
