package demo

import (
	"context"
	"fmt"
	"html/template"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/rules"
)

// verdict is one release through one disruption, over its four clients.
type verdict struct {
	Disruption     string
	Sent, Failed   int
	ByKind         map[string]int
	P99, Max       time.Duration
	Duration       time.Duration
	PerClientFails []string
}

// verdicts cuts each release's runs into its disruptions: the requests sent from a disruption's start
// to the start of the next (the last one: to the end of the load), so the failures a disruption causes
// after its marks (late endpoint removals) count for it.
func (r *release) verdicts() []verdict {
	var out []verdict
	for i, w := range r.Windows {
		v := verdict{Disruption: w.Name, ByKind: map[string]int{}, Duration: w.To.Sub(w.From)}
		for _, run := range r.Runs {
			to := run.Load.End
			if i+1 < len(r.Windows) {
				to = r.Windows[i+1].From
			}
			st := run.Load.Window(w.From, to)
			v.Sent += st.Sent
			v.Failed += st.Failed
			for k, n := range st.ByKind {
				v.ByKind[k] += n
			}
			v.P99, v.Max = max(v.P99, st.P99), max(v.Max, st.Max)
			if st.Failed > 0 {
				v.PerClientFails = append(v.PerClientFails, fmt.Sprintf("%s %d", run.Client, st.Failed))
			}
		}
		out = append(out, v)
	}
	return out
}

// setting is one row of the settings that made the difference, per release.
type setting struct {
	Name   string
	Values map[string]string
	Why    string
}

// readSettings reads what matters for zero downtime from each release's objects as they run, and runs
// the checker's rules over them.
func (d *demo) readSettings(t *testing.T) {
	ctx := context.Background()
	rows := []setting{
		{Name: "maxUnavailable / maxSurge", Why: "how many pods a rollout may stop before their replacements are ready"},
		{Name: "minReadySeconds", Why: "how long a new pod must stay ready before the next old one goes"},
		{Name: "readiness / liveness probe", Why: "one path for both restarts a pod that is only busy, and cannot say 'stop sending' without 'kill me'"},
		{Name: "startup probe", Why: "protects a slow start from the liveness probe"},
		{Name: "preStop", Why: "keeps the pod serving while its endpoint's removal reaches every node"},
		{Name: "terminationGracePeriodSeconds", Why: "must cover the preStop delay and the drain"},
		{Name: "PodDisruptionBudget", Why: "a drain evicts one pod at a time instead of all the pods on the node"},
		{Name: "the app on SIGTERM", Why: "closing the listener at once refuses the requests still on their way"},
	}
	for i := range rows {
		rows[i].Values = map[string]string{}
	}
	d.checks = map[string][]string{}
	for _, r := range d.releases {
		dep, err := d.env.Client.AppsV1().Deployments(Namespace).Get(ctx, r.name, metav1.GetOptions{})
		require.NoError(t, err)
		dep.Kind, dep.APIVersion = "Deployment", "apps/v1"
		pdbs, err := d.env.Client.PolicyV1().PodDisruptionBudgets(Namespace).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		svc, err := d.env.Client.CoreV1().Services(Namespace).Get(ctx, r.name, metav1.GetOptions{})
		require.NoError(t, err)
		svc.Kind, svc.APIVersion = "Service", "v1"
		objs := []runtime.Object{dep, svc}
		pdb := "none"
		for i := range pdbs.Items {
			p := &pdbs.Items[i]
			if p.Name == r.name {
				p.Kind, p.APIVersion = "PodDisruptionBudget", "policy/v1"
				objs = append(objs, p)
				switch {
				case p.Spec.MaxUnavailable != nil:
					pdb = "maxUnavailable " + p.Spec.MaxUnavailable.String()
				case p.Spec.MinAvailable != nil:
					pdb = "minAvailable " + p.Spec.MinAvailable.String()
				}
			}
		}
		c := dep.Spec.Template.Spec.Containers[0]
		set := func(row int, v string) { rows[row].Values[r.Key] = v }
		ru := dep.Spec.Strategy.RollingUpdate
		set(0, fmt.Sprintf("%s / %s", ru.MaxUnavailable.String(), ru.MaxSurge.String()))
		set(1, fmt.Sprintf("%d s", dep.Spec.MinReadySeconds))
		set(2, fmt.Sprintf("%s / %s", probePath(c.ReadinessProbe), probePath(c.LivenessProbe)))
		set(3, probePath(c.StartupProbe))
		if hook, secs := rules.PreStop(c); hook == "" {
			set(4, "none")
		} else {
			set(4, fmt.Sprintf("%s, %d s", hook, secs))
		}
		set(5, fmt.Sprintf("%d s", *dep.Spec.Template.Spec.TerminationGracePeriodSeconds))
		set(6, pdb)
		// What the app does on SIGTERM, as the answering apps said it (their mode), not as this demo set it.
		modes := appModes(r.Runs)
		require.NotEmpty(t, modes, "%s: the answers name the app's mode (mode=...)", r.Title)
		var said []string
		for _, m := range modes {
			said = append(said, sigtermBehaviour(m))
		}
		set(7, strings.Join(said, "; "))
		violations, err := rules.Check(objs, rules.Options{KubeVersion: d.kubeVersion(t), InAppDelayEnv: rules.DefaultInAppDelayEnv})
		require.NoError(t, err)
		for _, v := range violations {
			d.checks[r.Key] = append(d.checks[r.Key], fmt.Sprintf("%s: %s. %s", v.Field, v.Message, v.Fix))
		}
	}
	d.settings = rows
}

func (d *demo) kubeVersion(t *testing.T) string {
	v, err := d.env.Client.Discovery().ServerVersion()
	require.NoError(t, err)
	return strings.TrimPrefix(strings.SplitN(v.GitVersion, "-", 2)[0], "v")
}

func probePath(p *corev1.Probe) string {
	switch {
	case p == nil:
		return "none"
	case p.HTTPGet != nil:
		return p.HTTPGet.Path
	case p.TCPSocket != nil:
		return "tcp"
	case p.Exec != nil:
		return "exec"
	}
	return "grpc"
}

// report prints the verdict table and writes results/demo/index.html.
func (d *demo) report(t *testing.T) {
	d.readSettings(t)
	fmt.Printf("\n%-24s %-20s %7s %7s %-28s %9s %9s %9s\n", "release", "disruption", "sent", "failed", "failures by kind", "p99", "max", "took")
	for _, r := range d.releases {
		for _, v := range r.verdicts() {
			fmt.Printf("%-24s %-20s %7d %7d %-28s %9s %9s %9s\n", r.Title, v.Disruption, v.Sent, v.Failed, load.Kinds(v.ByKind),
				disrupt.Dur(v.P99), disrupt.Dur(v.Max), disrupt.Dur(v.Duration))
		}
	}
	require.NoError(t, os.MkdirAll(d.out, 0o755))
	f, err := os.Create(filepath.Join(d.out, "index.html"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, d.page(f))
	fmt.Printf("\nreport: %s\n", filepath.Join(d.out, "index.html"))
}

// timelineWidth is the width of each of the two timelines side by side.
const timelineWidth = 660

// clientRow is one client's two timelines, side by side.
type clientRow struct {
	Client string
	Runs   []*disrupt.Run // per release, in the releases' order
	Scale  disrupt.Scale
}

func (d *demo) page(f *os.File) error {
	var clients []string
	byClient := map[string][]*disrupt.Run{}
	for _, r := range d.releases {
		for _, run := range r.Runs {
			if _, ok := byClient[run.Client]; !ok {
				clients = append(clients, run.Client)
			}
			byClient[run.Client] = append(byClient[run.Client], run)
		}
	}
	sort.Strings(clients)
	// Where each client ran, as the runs say (not as the options asked): the page promises nothing else.
	var ran []string
	hostRan := false
	for _, c := range clients {
		ran = append(ran, fmt.Sprintf("%s at %d/s", c, byClient[c][0].Load.Rate))
		hostRan = hostRan || strings.HasPrefix(c, "host ")
	}
	var rows []clientRow
	for _, c := range clients {
		rows = append(rows, clientRow{Client: c, Runs: byClient[c], Scale: disrupt.ScaleFor(timelineWidth, byClient[c]...)})
	}
	type relView struct {
		*release
		Verdicts []verdict
		Lost     int
		Checks   []string
	}
	var rels []relView
	for _, r := range d.releases {
		v := relView{release: r, Verdicts: r.verdicts(), Checks: d.checks[r.Key]}
		for _, x := range v.Verdicts {
			v.Lost += x.Failed
		}
		rels = append(rels, v)
	}
	return pageTemplate.Execute(f, map[string]any{
		"Releases": rels, "Rows": rows, "Settings": d.settings, "Style": disrupt.Style, "Legend": disrupt.Legend,
		"Replicas": replicas, "When": d.start.UTC().Format("2006-01-02 15:04 UTC"), "Clients": ran, "HostRan": hostRan,
	})
}

var pageTemplate = template.Must(template.New("demo").Funcs(disrupt.Funcs).Funcs(template.FuncMap{
	"join": strings.Join,
	"cell": func(m map[string]string, k string) string { return m[k] },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>go-service: the same service, two setups, three disruptions</title>
<style>{{.Style}}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}.pair h3{margin:4px 0;font-size:15px}
.lost{color:#d93025}.kept{color:#1e7d46}.big{font-size:20px}</style></head><body>
<h1>The same service, two setups, three disruptions</h1>
<p>One Go service, {{.Replicas}} replicas, installed twice side by side in one namespace of a two-node cluster,
under the same load, from these clients, each run for both releases: {{join .Clients ", "}}. A GET opens a new
connection per request; POSTs go over a keep-alive pool that no client retries.{{if not .HostRan}} No client ran from the
host: the Services' cluster IPs did not answer from this machine.{{end}} Both went through a rolling
update, a node drain and the eviction of one pod, at the same time. Measured {{.When}}.</p>
<table><tr><th></th>{{range .Releases}}<th>{{.Title}}</th>{{end}}</tr>
<tr><td>What it is</td>{{range .Releases}}<td>{{.Summary}}</td>{{end}}</tr>
<tr><td>Requests lost</td>{{range .Releases}}<td class="big {{if .Lost}}lost{{else}}kept{{end}}">{{.Lost}}{{if and (not .Lost) (eq .Key "usual")}} (this run, the usual setup happened to drop nothing){{end}}</td>{{end}}</tr>
</table>
<h2>Verdict</h2>
<table><tr><th>Release</th><th>Disruption</th><th class="n">Sent</th><th class="n">Failed</th><th>Failures</th><th>p99</th><th>Max</th><th>Took</th></tr>
{{range .Releases}}{{$r := .}}{{range .Verdicts}}<tr><td>{{$r.Title}}</td><td>{{.Disruption}}</td><td class="n">{{.Sent}}</td>
<td class="n {{if .Failed}}lost{{end}}">{{.Failed}}</td><td>{{kinds .ByKind}}{{if .PerClientFails}} ({{join .PerClientFails ", "}}){{end}}</td>
<td class="t">{{dur .P99}}</td><td class="t">{{dur .Max}}</td><td class="t">{{dur .Duration}}</td></tr>{{end}}{{end}}</table>
<p>Each release's requests are counted from the start of a disruption to the start of the next, so the failures a disruption causes after its end count for it. Every client's own report: <a href="runs/index.html">runs/index.html</a>.</p>
<h2>What made the difference</h2>
<table><tr><th>Setting</th>{{range .Releases}}<th>{{.Title}}</th>{{end}}<th>Why it matters</th></tr>
{{$rels := .Releases}}{{range .Settings}}{{$s := .}}<tr><td>{{.Name}}</td>{{range $rels}}<td>{{cell $s.Values .Key}}</td>{{end}}<td>{{.Why}}</td></tr>{{end}}</table>
<h3>What <code>go-service check</code> says about each</h3>
<div class="pair">{{range .Releases}}<div><h3>{{.Title}}</h3>{{if .Checks}}<ul>{{range .Checks}}<li>{{.}}</li>{{end}}</ul>{{else}}<p class="kept">No violation.</p>{{end}}</div>{{end}}</div>
<h2>Timelines</h2>
{{.Legend}}
{{range .Rows}}<h3>{{.Client}}</h3><div class="pair">{{$row := .}}{{range $i, $run := .Runs}}<div class="release-{{(index $rels $i).Key}}"><h3>{{(index $rels $i).Title}}: {{$run.Load.Failed}} failed{{if $run.Load.Failed}} ({{kinds $run.Load.ByKind}}){{end}}</h3>
{{timeline $run 660 $row.Scale}}</div>{{end}}</div>
{{end}}
</body></html>
`))

// appModes are the modes the answering apps reported (the "mode=" field of their first line), sorted.
func appModes(runs []*disrupt.Run) []string {
	seen := map[string]bool{}
	for _, run := range runs {
		if run.Load == nil {
			continue
		}
		for b := range run.Load.Backends {
			for _, f := range strings.Fields(b) {
				if m, ok := strings.CutPrefix(f, "mode="); ok {
					seen[m] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// sigtermBehaviour says what the reference service does on SIGTERM in a mode (cmd/go-service).
func sigtermBehaviour(mode string) string {
	switch mode {
	case "graceful":
		return "fails readiness, keeps serving, drains (package graceful)"
	case "plain":
		return "closes its listener (http.Server.Shutdown)"
	case "naive":
		return "stops listening at once"
	}
	return "mode " + mode
}
