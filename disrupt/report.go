package disrupt

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/load"
)

// Mark is a moment of a run worth drawing: a rollout's start and end, an eviction, a drain.
type Mark struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// Run is one client's load run of a scenario, as reported.
type Run struct {
	Scenario string `json:"scenario"`
	Client   string `json:"client"` // "host GET new-conn", "in-cluster POST keep-alive", ...
	// Deployment is the target's Deployment (its pods get a lane in the timeline).
	Deployment string       `json:"deployment"`
	Expect     string       `json:"expect"` // "zero failures" or "failures (refused, reset, eof)"
	Load       *load.Result `json:"load"`
	Marks      []Mark       `json:"marks"`
	Events     []Event      `json:"events"`
	Changes    []Change     `json:"changes,omitempty"`
	// Disruption is the time from the first to the last mark (e.g. the rollouts), Floor what the settings
	// allow at best for it.
	Disruption time.Duration `json:"disruption"`
	Floor      time.Duration `json:"floor"`
	Steady     Latencies     `json:"steady"`
	During     Latencies     `json:"during"`
	// CPUWait is the most time some task on the machine waited for a CPU in one second of the
	// disruption, as the client measured it (-1: not measured): how busy the machine was.
	CPUWait time.Duration `json:"cpuWait"`
	// CPUBusiest names the processes that used the most CPU on the machine in that second ("" where
	// the client did not sample them: load.Config.Processes).
	CPUBusiest string   `json:"cpuBusiest,omitempty"`
	Violations []string `json:"violations"`
	// Propagation is each node's network programming lag measured while the load ran
	// (Options.ProxyMetrics).
	Propagation []Propagation `json:"propagation,omitempty"`
	// Lag says where a node's measured lag outlasted the pods' preStop delay (a finding to explain
	// failures by, not a gate).
	Lag []string `json:"lag,omitempty"`
	// Control is the control client's run from the same place (Options.ControlURL: a Service nothing
	// disrupts). Noise lists, for a failed run whose every troubled second (a timeout, a slow request,
	// a stall) the control shared within a second, and which failed in no way a stall cannot cause,
	// each such second with what the CPU did then: the machine's or the cluster's trouble. Why says, for
	// a failed run, what the control tells of it.
	Control *load.Result `json:"control,omitempty"`
	Noise   []string     `json:"noise,omitempty"`
	Why     string       `json:"why,omitempty"`
	// Notes say what could not be checked and why.
	Notes []string `json:"notes,omitempty"`
	// Beside names the other loads started with the same Reports that ran at some time during this
	// one's (scenarios run concurrently): their scenario, or their test and namespace while they still ran.
	Beside []string `json:"beside,omitempty"`
	Passed bool     `json:"passed"`
}

// Latencies of the successful requests of a window.
type Latencies struct {
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

// Expect is what a scenario expects of its load.
type Expect struct {
	Failures bool     // a negative control: requests must fail inside the disruption
	Kinds    []string // the failure kinds that count as evidence
	// Only limits the expectation to the clients whose name contains it (e.g. "new-conn": a propagation
	// lag drops new connections; established keep-alive connections never see it). The other clients
	// are checked for coverage and reported.
	Only string
}

// ZeroFailures is the expectation of every zero-downtime scenario.
var ZeroFailures = Expect{}

// FailuresOf is a negative control's expectation: failures of these kinds inside the disruption.
func FailuresOf(kinds ...string) Expect { return Expect{Failures: true, Kinds: kinds} }

// On limits the expectation to the clients whose name contains client.
func (e Expect) On(client string) Expect {
	e.Only = client
	return e
}

func (e Expect) applies(client string) bool { return e.Only == "" || strings.Contains(client, e.Only) }

func (e Expect) String() string {
	if !e.Failures {
		return "zero failures"
	}
	return "failures (" + strings.Join(e.Kinds, ", ") + ")"
}

// Evaluate applies every gate to every client's run and sets its Violations and Passed: coverage;
// reality of each recorded rollout; for a zero-downtime scenario no failure and no request slower than
// policy.SlowAfter; for a negative control, failures of the expected kinds inside the disruption and
// none outside. It returns the cluster-level violations (a rollout that replaced nothing), which every
// run also lists.
func Evaluate(runs []*Run, e Expect, p gate.Policy) []error {
	if len(runs) == 0 {
		return []error{&gate.Violation{Gate: gate.Coverage, Detail: "no load ran: nothing was proved"}}
	}
	var cluster []error
	if len(runs[0].Changes) == 0 {
		cluster = append(cluster, &gate.Violation{Gate: gate.Reality, Detail: "no change was declared (Rollout, Upgrade, EvictOne, EvictFrom, Scale, BadRelease, HelmTest, ScaleHeld, NoChange): marks alone prove nothing about a disruption"})
	}
	for _, ch := range runs[0].Changes {
		cluster = append(cluster, ch.Check()...)
	}
	for _, r := range runs {
		r.Expect = e.String()
		if !e.applies(r.Client) {
			r.Expect = "reported"
		}
		var w gate.Window
		if len(r.Marks) > 0 {
			w = gate.Window{From: r.Marks[0].At, To: r.Marks[len(r.Marks)-1].At}
		}
		c := gate.Check{Client: r.Client, Result: r.Load, Window: w}
		errs := append([]error(nil), cluster...)
		if len(r.Marks) == 0 {
			errs = append(errs, &gate.Violation{Gate: gate.Coverage, Client: r.Client, Detail: "no disruption was marked"})
		}
		errs = append(errs, gate.CheckTotals(c, p)...)
		stalls := map[error]bool{}
		for _, err := range gate.CheckStalls(c, p) {
			stalls[err] = true
			errs = append(errs, err)
		}
		switch {
		case e.Failures && e.applies(r.Client):
			errs = append(errs, gate.CheckSensitivity(c, p, e.Kinds...)...)
		case e.Failures:
		case e.applies(r.Client):
			errs = append(errs, gate.CheckNoFailures(c)...)
			errs = append(errs, gate.CheckLatency(c, p)...)
		}
		r.Notes = nil
		if r.Load != nil && len(r.Changes) > 0 {
			if len(podNames(r.Load.Window(w.From, r.Load.End).Backends)) == 0 {
				r.Notes = append(r.Notes, "the responses do not name their pod (a first line `pod=NAME`), so which pods answered was not checked; the change itself was (pods, ReplicaSets, endpoints)")
			} else {
				errs = append(errs, checkAnswers(r, c, p)...)
			}
		}
		r.Violations = nil
		for _, err := range errs {
			r.Violations = append(r.Violations, err.Error())
		}
		r.Passed = len(errs) == 0
		r.Noise, r.Why = nil, ""
		switch {
		case r.Passed:
		case !timingOnly(errs, stalls):
			r.Why = "a violation no stall of the machine causes (the change's reality, or the run as a whole): the change's"
		default:
			r.Noise, r.Why = coincidence(r, w, p)
			if len(r.Noise) > 0 {
				r.Why = fmt.Sprintf("in every second this client was in trouble, the control client (%s, a Service nothing disrupts) was too within a second, or (for the host's clients, whose connections kube-proxy masquerades) the kernel recorded that every SYN the slow request sent again had first been answered by an older connection's TIME_WAIT (not lost), and this client failed in no way a stall cannot cause: the machine's or the cluster's trouble: %s", r.Control.Name, strings.Join(r.Noise, "; "))
			}
		}
		if r.Control != nil && r.Why != "" && len(r.Noise) == 0 {
			r.Why += fmt.Sprintf(" (the control: %s)", controlSummary(r.Control))
		}
	}
	return cluster
}

// Gate evaluates the runs (Evaluate), writes their reports, and fails tb with each violation.
func (rp *Reports) Gate(tb testing.TB, runs []*Run, e Expect, p gate.Policy) {
	tb.Helper()
	rp.gate(tb, runs, e, p, nil)
}

// Noisy says whether the runs failed only where the machine or the cluster stalled: some run failed,
// no change failed its reality check, and every failed run's control client failed or stalled too. It
// returns what the controls saw.
func Noisy(runs []*Run, cluster []error) (bool, string) {
	if len(cluster) > 0 {
		return false, ""
	}
	var why []string
	for _, r := range runs {
		switch {
		case r.Passed:
		case len(r.Noise) == 0:
			return false, ""
		default:
			why = append(why, fmt.Sprintf("[%s] %s", r.Client, strings.Join(r.Noise, "; ")))
		}
	}
	return len(why) > 0, strings.Join(why, " | ")
}

// gate is Gate; with onNoise set, runs that are Noisy are logged and recorded, and onNoise is called
// with what the controls saw instead of failing tb: the caller repeats the scenario once.
func (rp *Reports) gate(tb testing.TB, runs []*Run, e Expect, p gate.Policy, onNoise func(why string)) {
	tb.Helper()
	cluster := Evaluate(runs, e, p)
	if len(runs) == 0 {
		tb.Errorf("%v", cluster[0])
		return
	}
	for _, r := range runs {
		if err := rp.Record(r); err != nil {
			tb.Errorf("report of %s (%s): %v", r.Scenario, r.Client, err)
		}
		if r.Load != nil {
			tb.Logf("%s [%s]: %s", r.Scenario, r.Client, r.Load.Summary())
		}
	}
	fail := tb.Errorf
	noisy, why := Noisy(runs, cluster)
	if noisy && onNoise != nil {
		fail = tb.Logf
		tb.Logf("%s: the gates failed while the control clients failed or stalled too, or where the kernel recorded a SYN answered by a TIME_WAIT; the violations follow, not counted: the scenario is repeated", runs[0].Scenario)
	}
	for _, err := range cluster {
		fail("%s: %v", runs[0].Scenario, err)
	}
	for _, r := range runs {
		for _, v := range r.Violations[len(cluster):] {
			fail("%s: %s", r.Scenario, v)
		}
	}
	if noisy && onNoise != nil {
		onNoise(why)
	}
}

// checkBackendsPerChange checks, for each change the run recorded, that its old and its new pods
// answered inside that change's own window (from its start to SettleAfter past its end), so traffic
// before a later change cannot stand in for it; an evicted pod's answers count from SteadyBefore before
// its eviction. A keep-alive client is not held to it for an eviction or a drain (its pool's few
// connections may never have been on the evicted pods): the run's notes say so.
func checkBackendsPerChange(r *Run, c gate.Check, p gate.Policy) []error {
	p = p.WithDefaults()
	var out []error
	for _, rp := range r.Changes {
		if rp.Kind != KindRollout && rp.Kind != KindEviction {
			continue // the other kinds replace no pod (checkAnswers)
		}
		if rp.Kind == KindEviction && (r.Load.KeepAlive || r.Load.GRPC != "") {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: which pods answered this client was not checked: its long-lived connections (a keep-alive pool, a gRPC connection) may never have been on the evicted pods (%s)", rp.What, strings.Join(rp.Evicted, ", ")))
			continue
		}
		from, to := rp.From, rp.To
		if from.IsZero() { // a change recorded without its window: the run's
			from, to = c.Window.From, c.Window.To
		}
		seen := podNames(r.Load.Window(from, to.Add(p.SettleAfter)).Backends)
		oldSeen, what := seen, rp.What
		if rp.Kind == KindEviction {
			// An evicted pod leaves the Service's endpoints as soon as the eviction is accepted, and
			// kube-proxy can drop it from a client's picks within milliseconds: it must have answered in
			// the steady load just before the eviction, or during it.
			oldSeen = podNames(r.Load.Window(from.Add(-p.SteadyBefore), to.Add(p.SettleAfter)).Backends)
			what = fmt.Sprintf("%s (the evicted pods' answers counted from %s before it)", rp.What, p.SteadyBefore)
		}
		cc := c
		cc.Window = gate.Window{From: from, To: to}
		for _, err := range gate.CheckBackends(cc, rp.Replacement.Before, rp.Replacement.After, oldSeen, seen) {
			out = append(out, fmt.Errorf("%s: %w", what, err))
		}
	}
	return out
}

// podNames turns the backends' answers ("pod=NAME version=V") into pod names.
func podNames(backends map[string]int) map[string]int {
	out := map[string]int{}
	for b, n := range backends {
		f := strings.Fields(b)
		if len(f) > 0 && strings.HasPrefix(f[0], "pod=") {
			out[strings.TrimPrefix(f[0], "pod=")] += n
		}
	}
	return out
}

// Reports collects the runs of a suite and writes each one's JSON and HTML report into Dir. It is safe
// for concurrent use.
type Reports struct {
	Dir   string
	mu    sync.Mutex
	runs  []*Run
	loads []*loadSpan
}

// loadSpan is one Traffic's time, from Start until its clients stopped (to is zero while it runs).
type loadSpan struct {
	ns, test, scenario string
	from, to           time.Time
}

// begin records that a load on namespace ns, started by the test named test, starts now.
func (rp *Reports) begin(ns, test string) *loadSpan {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	s := &loadSpan{ns: ns, test: test, from: time.Now()}
	rp.loads = append(rp.loads, s)
	return s
}

// finish records that the load of s stopped now (once; a scenario name given later is kept).
func (rp *Reports) finish(s *loadSpan, scenario string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if s.to.IsZero() {
		s.to = time.Now()
	}
	if scenario != "" {
		s.scenario = scenario
	}
}

// beside names the other loads whose time overlapped s's: a finished one by its scenario, one still
// running by its test and namespace.
func (rp *Reports) beside(s *loadSpan) []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	to := s.to
	if to.IsZero() {
		to = time.Now()
	}
	var out []string
	for _, o := range rp.loads {
		if o == s || !o.from.Before(to) || (!o.to.IsZero() && !o.to.After(s.from)) {
			continue
		}
		name := o.scenario
		if name == "" {
			name = fmt.Sprintf("%s's load in namespace %s (still running)", o.test, o.ns)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// NewReports writes into dir (created on the first report).
func NewReports(dir string) *Reports { return &Reports{Dir: dir} }

// Runs returns the runs recorded so far.
func (rp *Reports) Runs() []*Run {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]*Run(nil), rp.runs...)
}

// Record computes a run's figures, writes its JSON and HTML timeline, and keeps it for the summary.
func (rp *Reports) Record(r *Run) error {
	r.Figures()
	rp.mu.Lock()
	rp.runs = append(rp.runs, r)
	rp.mu.Unlock()
	dir := rp.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, r.File())
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
	if r.Load == nil {
		return nil
	}
	return page.Execute(f, map[string]any{"R": r, "Scenario": r.Scenario, "Client": r.Client, "Style": Style, "Legend": Legend})
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

// Summary is the table printed at the end of a suite, followed by every violation: per scenario and client, what was sent and
// lost, the latency in steady state and during the disruption, and the disruption against its floor.
func (rp *Reports) Summary() string {
	runs := rp.Runs()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d load run(s); reports in %s (cpu wait: the most time some task on the machine waited for a CPU in one second of the disruption, /proc/pressure/cpu)\n", len(runs), rp.Dir)
	fmt.Fprintf(&b, "%-40s %-27s %6s %5s %-24s %17s %17s %8s %7s %6s %8s %s\n", "scenario", "client", "sent", "fail", "failures by kind", "steady p99/max", "during p99/max", "disrupt", "floor", "xfloor", "cpu wait", "verdict")
	for _, r := range runs {
		if r.Load == nil {
			continue
		}
		var kinds []string
		for k, v := range r.Load.ByKind {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(kinds)
		verdict := "PASS"
		if !r.Passed {
			verdict = "FAIL"
		}
		ratio := "-"
		if r.Floor > 0 {
			ratio = fmt.Sprintf("%.2f", r.Disruption.Seconds()/r.Floor.Seconds())
		}
		wait := "-"
		if r.CPUWait >= 0 {
			wait = r.CPUWait.String()
		}
		fmt.Fprintf(&b, "%-40s %-27s %6d %5d %-24s %17s %17s %8s %7s %6s %8s %s (expect %s)\n", r.Scenario, r.Client, r.Load.Sent, r.Load.Failed,
			strings.Join(kinds, ","), pair(r.Steady), pair(r.During),
			r.Disruption.Round(100*time.Millisecond), r.Floor.Round(100*time.Millisecond), ratio, wait, verdict, r.Expect)
	}
	var failed []string
	violations := 0
	for _, r := range runs {
		violations += len(r.Violations)
		for _, v := range r.Violations {
			failed = append(failed, fmt.Sprintf("  %s [%s]: %s", r.Scenario, r.Client, v))
		}
		if r.Why != "" {
			failed = append(failed, fmt.Sprintf("  %s [%s]: WHY: %s", r.Scenario, r.Client, r.Why))
		}
	}
	var lags []string
	seen := map[string]bool{}
	for _, r := range runs {
		if len(r.Propagation) == 0 || seen[r.Scenario] {
			continue
		}
		seen[r.Scenario] = true
		for _, p := range r.Propagation {
			lags = append(lags, fmt.Sprintf("  %s: %s", r.Scenario, p))
		}
		for _, l := range r.Lag {
			lags = append(lags, fmt.Sprintf("  %s: NOTE %s", r.Scenario, l))
		}
	}
	if len(lags) > 0 {
		fmt.Fprintf(&b, "endpoint propagation while each scenario's load ran (each node's kube-proxy, every Service's changes):\n%s\n", strings.Join(lags, "\n"))
	}
	beside := map[string]bool{}
	for _, r := range runs {
		if len(r.Beside) > 0 {
			beside[fmt.Sprintf("  %s: %s", r.Scenario, strings.Join(r.Beside, "; "))] = true
		}
	}
	if len(beside) > 0 {
		fmt.Fprintf(&b, "scenarios that ran beside others (their loads at the same time on this machine and cluster):\n%s\n", strings.Join(slices.Sorted(maps.Keys(beside)), "\n"))
	}
	notes := map[string]bool{}
	for _, r := range runs {
		for _, n := range r.Notes {
			notes[fmt.Sprintf("  %s [%s]: %s", r.Scenario, r.Client, n)] = true
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "not checked (%d):\n%s\n", len(notes), strings.Join(slices.Sorted(maps.Keys(notes)), "\n"))
	}
	if len(failed) > 0 {
		// Last, so that the end of a long output (what CI keeps) says why a run failed.
		fmt.Fprintf(&b, "violations (%d), each failed run followed by what its control client says of it (WHY):\n%s\n", violations, strings.Join(failed, "\n"))
	}
	return b.String()
}

func pair(l Latencies) string {
	return fmt.Sprintf("%s/%s", l.P99.Round(time.Millisecond), l.Max.Round(time.Millisecond))
}

// Figures computes a run's disruption time and its latencies in steady state and during the
// disruption (Record does it; a page that draws runs it has not recorded calls it).
func (r *Run) Figures() {
	r.CPUWait = -1
	if len(r.Marks) > 0 && r.Load != nil {
		first, last := r.Marks[0].At, r.Marks[len(r.Marks)-1].At
		r.Disruption = last.Sub(first)
		st, du := r.Load.Window(r.Load.Start, first), r.Load.Window(first, last)
		r.Steady = Latencies{P50: st.P50, P99: st.P99, Max: st.Max}
		r.During = Latencies{P50: du.P50, P99: du.P99, Max: du.Max}
		if at, ms, ok := r.Load.MaxCPUPressure(first, last); ok {
			r.CPUWait = time.Duration(ms) * time.Millisecond
			r.CPUBusiest = r.Load.BusiestAt(r.Load.Start.Add(at + time.Second/2))
		}
	}
}

// File is the base name of a run's report files.
func (r *Run) File() string { return fileName(r.Scenario + "-" + r.Client) }

// Funcs are the template functions of every page drawn from runs.
var Funcs = template.FuncMap{
	"timeline": TimelineSVG,
	"kinds":    Kinds,
	"dur":      Dur,
	"lat": func(l Latencies) string {
		return fmt.Sprintf("p50 %s, p99 %s, max %s", Dur(l.P50), Dur(l.P99), Dur(l.Max))
	},
	"verdict": func(passed bool) template.HTML {
		if passed {
			return `<span class="pass">PASS</span>`
		}
		return `<span class="fail">FAIL</span>`
	},
	"scaleOf":  func(runs ...*Run) Scale { return ScaleOf(runs...) },
	"scaleFor": func(width float64, runs ...*Run) Scale { return ScaleFor(width, runs...) },
	"clock":    func(t time.Time) string { return t.Format("15:04:05.000") },
	"since": func(r *Run, t time.Time) string {
		return fmt.Sprintf("%6.2f s", t.Sub(r.Load.Start).Seconds())
	},
}

var page = template.Must(template.New("run").Funcs(Funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Scenario}}: {{.Client}}</title>
<style>{{.Style}}</style></head><body>
{{with .R}}<p><a href="index.html">All runs</a></p>
<h1>{{.Scenario}}: {{.Client}}</h1>
<p>{{verdict .Passed}} expected {{.Expect}}. {{.Load.Sent}} requests sent ({{.Load.Mode}}, {{.Load.Rate}}/s over {{dur (.Load.End.Sub .Load.Start)}}), {{.Load.Failed}} failed: {{kinds .Load.ByKind}}.</p>
{{if .Violations}}<ul>{{range .Violations}}<li class="fail">{{.}}</li>{{end}}</ul>{{end}}
{{with .Why}}<p>{{.}}</p>{{end}}
{{with .Control}}<p>Control client ({{.Name}}, a Service nothing disrupts, from the same place): {{len .Requests}} requests, {{.Failed}} failed: {{kinds .ByKind}}.</p>{{end}}
{{if .Beside}}<p>Ran beside (other scenarios' load at the same time): {{range $i, $b := .Beside}}{{if $i}}; {{end}}{{$b}}{{end}}.</p>{{end}}
{{if .Notes}}<p>Not checked:</p><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Changes}}<p>Declared changes, each checked against what its kind must do:</p><ul>{{range .Changes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>Disruption {{dur .Disruption}}{{if .Floor}} (the settings allow {{dur .Floor}} at best){{end}}. Latency in steady state: {{lat .Steady}}; during the disruption: {{lat .During}}.{{if ge .CPUWait 0}} The machine's CPU: in the busiest second of the disruption some task waited {{dur .CPUWait}} for a CPU (/proc/pressure/cpu, as this client measured it){{if .CPUBusiest}}; {{.CPUBusiest}}{{end}}.{{end}}</p>
{{if .Propagation}}<p>Endpoint propagation while the load ran, as each node's kube-proxy measured it (from an endpoint change to its rules; every Service's changes):</p><ul>{{range .Propagation}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Lag}}<ul>{{range .Lag}}<li class="fail">{{.}}</li>{{end}}</ul>{{end}}
{{timeline . 1100 (scaleOf .)}}{{end}}
{{.Legend}}
{{with .R}}<h2>Failures{{if .Load.Samples}} (the first {{len .Load.Samples}}){{end}}</h2>
{{if .Load.Samples}}<pre>{{range .Load.Samples}}{{clock .At}} {{.Kind}} {{.Error}}
{{end}}</pre>{{else}}<p>None.</p>{{end}}
<h2>Pods and endpoints</h2><pre>{{$r := .}}{{range .Events}}{{since $r .At}}  {{printf "%-44s" .Object}} {{.What}}
{{end}}</pre>{{end}}
</body></html>
`))

var index = template.Must(template.New("index").Funcs(Funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title><style>{{.Style}}</style></head><body>
<h1>{{.Title}}</h1>
<p>{{len .Runs}} load runs, one per scenario and client. Each links to its timeline.</p>
<table><tr><th>Scenario</th><th>Client</th><th>Expected</th><th>Verdict</th><th class="n">Sent</th><th class="n">Failed</th><th>Failures</th><th>p99 during</th><th>Disruption</th></tr>
{{range .Runs}}<tr><td>{{.Scenario}}</td><td><a href="{{.File}}.html">{{.Client}}</a></td><td>{{.Expect}}</td><td>{{verdict .Passed}}</td>
<td class="n">{{.Load.Sent}}</td><td class="n">{{.Load.Failed}}</td><td>{{kinds .Load.ByKind}}</td><td>{{dur .During.P99}}</td><td>{{dur .Disruption}}</td></tr>
{{end}}</table></body></html>
`))

// WriteIndex writes index.html into Dir: every recorded run with its verdict, linking its page.
func (rp *Reports) WriteIndex(title string) error {
	var runs []*Run
	for _, r := range rp.Runs() {
		if r.Load != nil {
			runs = append(runs, r)
		}
	}
	if err := os.MkdirAll(rp.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(rp.Dir, "index.html"))
	if err != nil {
		return err
	}
	defer f.Close()
	return index.Execute(f, map[string]any{"Title": title, "Runs": runs, "Style": Style})
}
