package live

import (
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-service/go-service/load"
)

// Mark is a moment of a run worth drawing: a rollout's start and end, an eviction, a drain.
type Mark struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// Run is one load run of a scenario, as reported.
type Run struct {
	Scenario string       `json:"scenario"`
	Client   string       `json:"client"` // "host" or "in-cluster"
	Gate     bool         `json:"gate"`   // counts for pass/fail (new connection per request)
	Expect   string       `json:"expect"` // "zero failures" or "failures" (negative controls)
	Load     *load.Result `json:"load"`
	Marks    []Mark       `json:"marks"`
	Events   []Event      `json:"events"`
	// Disruption is the time from the first to the last mark (e.g. the rollouts), Floor what the settings
	// allow at best for it.
	Disruption time.Duration `json:"disruption"`
	Floor      time.Duration `json:"floor"`
	SteadyP99  time.Duration `json:"steadyP99"`
	DuringP99  time.Duration `json:"duringP99"`
	Passed     bool          `json:"passed"`
}

var (
	reportMu sync.Mutex
	runs     []*Run
)

// resultsDir is where the reports go: $GO_SERVICE_RESULTS or <repo>/results/live.
func resultsDir() string {
	if d := os.Getenv("GO_SERVICE_RESULTS"); d != "" {
		return d
	}
	return filepath.Join(repoRoot, "results", "live")
}

// Record computes a run's figures, writes its JSON and HTML timeline, and keeps it for the summary.
func Record(r *Run) error {
	if len(r.Marks) > 0 {
		first, last := r.Marks[0].At, r.Marks[len(r.Marks)-1].At
		r.Disruption = last.Sub(first)
		r.SteadyP99 = r.Load.Latency(r.Load.Start, first, 0.99)
		r.DuringP99 = r.Load.Latency(first, last, 0.99)
	}
	reportMu.Lock()
	runs = append(runs, r)
	reportMu.Unlock()
	dir := resultsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, fileName(r.Scenario+"-"+r.Client+"-"+mode(r)))
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", data, 0o644); err != nil {
		return err
	}
	f, err := os.Create(base + ".html")
	if err != nil {
		return err
	}
	defer f.Close()
	return page.Execute(f, view(r))
}

func mode(r *Run) string {
	if r.Load.KeepAlive {
		return "keepalive"
	}
	return "newconn"
}

func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

// Summary is the table printed at the end of the live suite.
func Summary() string {
	reportMu.Lock()
	defer reportMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\nlive suite: %d load run(s); reports in %s\n", len(runs), resultsDir())
	fmt.Fprintf(&b, "%-38s %-10s %-9s %7s %6s %-26s %9s %9s %9s %9s %s\n", "scenario", "client", "conn", "sent", "failed", "failures by kind", "p99 steady", "p99 during", "disrupt", "floor", "verdict")
	for _, r := range runs {
		kinds := []string{}
		for k, v := range r.Load.ByKind {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(kinds)
		verdict := "PASS"
		if !r.Passed {
			verdict = "FAIL"
		}
		if !r.Gate {
			verdict = "reported" // keep-alive runs are context, never the gate
		}
		fmt.Fprintf(&b, "%-38s %-10s %-9s %7d %6d %-26s %9s %9s %9s %9s %s (expect %s)\n", r.Scenario, r.Client, mode(r), r.Load.Sent, r.Load.Failed,
			strings.Join(kinds, ","), r.SteadyP99.Round(time.Millisecond), r.DuringP99.Round(time.Millisecond),
			r.Disruption.Round(100*time.Millisecond), r.Floor.Round(100*time.Millisecond), verdict, r.Expect)
	}
	return b.String()
}

type bar struct {
	X, OKH, FailH, Y0 float64
	Label             string
}

type markView struct {
	X     float64
	Label string
}

func view(r *Run) map[string]any {
	const width, height = 900.0, 220.0
	secs := len(r.Load.Seconds)
	if secs == 0 {
		secs = 1
	}
	maxN := 1
	for _, s := range r.Load.Seconds {
		n := s.OK
		for _, f := range s.Failed {
			n += f
		}
		if n > maxN {
			maxN = n
		}
	}
	w := width / float64(secs)
	var bars []bar
	for _, s := range r.Load.Seconds {
		fail := 0
		for _, f := range s.Failed {
			fail += f
		}
		okH := float64(s.OK) / float64(maxN) * (height - 20)
		failH := float64(fail) / float64(maxN) * (height - 20)
		bars = append(bars, bar{X: float64(s.T) * w, OKH: okH, FailH: failH, Y0: height - okH - failH,
			Label: fmt.Sprintf("t=%ds ok=%d failed=%v p50=%.1fms p99=%.1fms", s.T, s.OK, s.Failed, s.P50Milli, s.P99Milli)})
	}
	var marks []markView
	for _, m := range r.Marks {
		marks = append(marks, markView{X: m.At.Sub(r.Load.Start).Seconds() * w, Label: m.What})
	}
	var events []string
	for _, e := range r.Events {
		events = append(events, fmt.Sprintf("%7.2fs  %-40s %s", e.At.Sub(r.Load.Start).Seconds(), e.Object, e.What))
	}
	return map[string]any{"R": r, "Bars": bars, "Marks": marks, "W": w, "Width": width, "Height": height,
		"Events": events, "Summary": r.Load.Summary(), "Samples": r.Load.Samples}
}

var page = template.Must(template.New("run").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.R.Scenario}} ({{.R.Client}})</title>
<style>body{font-family:sans-serif;margin:2em} pre{font-size:12px} .ok{fill:#4a9} .fail{fill:#d33} .mark{stroke:#333;stroke-dasharray:4}</style>
</head><body>
<h1>{{.R.Scenario}}: {{.R.Client}} client</h1>
<p>{{.Summary}}. Expected: {{.R.Expect}}. Verdict: {{if .R.Passed}}PASS{{else}}FAIL{{end}}.</p>
<p>Disruption {{.R.Disruption}} (floor {{.R.Floor}}); p99 latency steady {{.R.SteadyP99}}, during {{.R.DuringP99}}.</p>
<svg width="{{.Width}}" height="{{.Height}}" style="border:1px solid #ccc">
{{range .Bars}}<g><title>{{.Label}}</title><rect class="ok" x="{{.X}}" y="{{.Y0}}" width="{{$.W}}" height="{{.OKH}}"/><rect class="fail" x="{{.X}}" y="{{.Y0}}" width="{{$.W}}" height="{{.FailH}}"/></g>
{{end}}{{range .Marks}}<line class="mark" x1="{{.X}}" x2="{{.X}}" y1="0" y2="{{$.Height}}"><title>{{.Label}}</title></line><text x="{{.X}}" y="12" font-size="10">{{.Label}}</text>
{{end}}</svg>
<p>Green: successful requests per second; red: failed. Dashed lines: {{range .Marks}}{{.Label}}; {{end}}</p>
<h2>Failures (first {{len .Samples}})</h2><pre>{{range .Samples}}{{.At.Format "15:04:05.000"}} {{.Kind}} {{.Error}}
{{end}}</pre>
<h2>Pods and endpoints</h2><pre>{{range .Events}}{{.}}
{{end}}</pre>
</body></html>
`))
