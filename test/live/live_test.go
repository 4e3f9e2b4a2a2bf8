package live

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/tcptrace"
	"github.com/go-service/go-service/test/kube"
	"github.com/go-service/go-service/test/render"
	"github.com/go-service/go-service/test/tools"
)

var (
	env      *kube.Env
	chartDir string
	// kernel is the kernel's record of TCP handshakes on this machine (nil where it cannot be read).
	kernel *tcptrace.Watcher
)

// The live suite runs on a 2-node local cluster (KUBECONFIG: any cluster) with kube-proxy's default
// 1 s minSyncPeriod; the slow-propagation scenarios replace it with a 3 s one for their own run.
func TestMain(m *testing.M) {
	if err := tools.PutOnPath("helm"); err != nil { // terratest runs helm from PATH
		fmt.Fprintln(os.Stderr, "live suite:", err)
		os.Exit(1)
	}
	if err := helmLane(); err != nil {
		fmt.Fprintln(os.Stderr, "live suite:", err)
		os.Exit(1)
	}
	var err error
	chartDir, err = render.ChartDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "live suite:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	env, err = kube.Connect(ctx, cluster.Options{Nodes: nodes()})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "live suite: FAIL:", err)
		os.Exit(1)
	}
	if kernel, err = tcptrace.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "live suite: the kernel's record of TCP handshakes is off (slow connects are reported without it):", err)
	}
	code := m.Run()
	if kernel != nil {
		if err := kernel.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "live suite:", err)
			code = 1
		}
	}
	if err := deleteControl(); err != nil {
		fmt.Fprintln(os.Stderr, "live suite: delete the control Service:", err)
		code = 1
	}
	fmt.Print(reports.Summary())
	if err := reports.WriteIndex("go-service live suite"); err != nil {
		fmt.Fprintln(os.Stderr, "live suite: index page:", err)
		code = 1
	}
	os.Exit(code)
}

// helmLane puts the CLI GO_SERVICE_HELM names (helm3: Helm 3, for the Helm 3 lane of `make e2e`) first
// on PATH as `helm`, so terratest's helm module and every scenario deploy with it. Unset, or helm, the
// suite deploys with Helm 4.
func helmLane() error {
	cli := os.Getenv("GO_SERVICE_HELM")
	if cli == "" || cli == "helm" {
		return nil
	}
	bin, err := tools.Build(cli)
	if err != nil {
		return fmt.Errorf("GO_SERVICE_HELM=%s: %w", cli, err)
	}
	dir := filepath.Join(filepath.Dir(bin), cli+"-lane")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, "helm")
	_ = os.Remove(link)
	if err := os.Symlink(bin, link); err != nil {
		return err
	}
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func nodes() int {
	if n, err := strconv.Atoi(os.Getenv("GO_SERVICE_NODES")); err == nil {
		return n
	}
	return 2
}

// appImage is the reference service, tagged as the chart's default image (go-service:<appVersion>), with
// a static sleep for the exec preStop mode.
func appImage(t *testing.T) string { return "go-service:" + appImageTagged(t, "0.1.0") }

// appImageTagged is the same image under another tag (an image change for the chart); it returns the tag.
func appImageTagged(t *testing.T, tag string) string {
	env.Image(t, image.Spec{Ref: "go-service:" + tag, Package: "./cmd/go-service", Tags: []string{"service_only"}, Binary: "/go-service",
		Files: map[string]string{"/bin/busybox": "/bin/busybox"}, Symlinks: map[string]string{"/bin/sleep": "busybox"}})
	return tag
}

// release is one installed go-service release.
type release struct {
	t     *testing.T
	ns    string
	name  string
	chart string // the chart directory or package it was last installed or upgraded from
	opts  *helm.Options
}

func (r *release) fullname() string { return r.name + "-go-service" }

func (r *release) selector() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "go-service", "app.kubernetes.io/instance": r.name}
}

// baseValues make the chart run on a cluster without a registry: the imported image, never pulled, and
// the helm test hook using the reference service's own client.
var baseValues = map[string]string{
	"image.pullPolicy":       "Never",
	"tests.image.repository": "go-service",
	"tests.image.tag":        "0.1.0",
	"tests.image.pullPolicy": "Never",
	"tests.command":          "{/go-service,get,$(TEST_URL)}",
}

// install installs the chart with terratest's helm module (as users do) and waits for a finished rollout.
func install(t *testing.T, ns string, values map[string]string, wait bool) *release {
	t.Helper()
	return installChart(t, ns, chartDir, values, wait)
}

// installChart installs a chart directory or package (e.g. a previous version of the chart).
func installChart(t *testing.T, ns, chart string, values map[string]string, wait bool) *release {
	t.Helper()
	appImage(t)
	set := map[string]string{}
	for k, v := range baseValues {
		set[k] = v
	}
	for k, v := range values {
		set[k] = v
	}
	r := &release{t: t, ns: ns, name: "svc", chart: chart, opts: &helm.Options{
		Logger:         logger.Discard,
		KubectlOptions: k8s.NewKubectlOptions("", env.Kubeconfig, ns),
		SetValues:      set,
		ExtraArgs:      map[string][]string{"install": {"--timeout", "5m"}},
	}}
	if wait {
		r.opts.ExtraArgs["install"] = append(r.opts.ExtraArgs["install"], "--wait")
	}
	helm.Install(t, r.opts, chart, r.name)
	if wait {
		env.WaitRolledOut(t, ns, r.fullname(), r.replicas(), 3*time.Minute)
	}
	return r
}

// chartDefaultReplicas is the chart's default replicaCount (values.yaml).
const chartDefaultReplicas = 2

// replicas is the replica count the release's values ask for: replicaCount, or the chart's default.
func (r *release) replicas() int32 {
	r.t.Helper()
	v, ok := r.opts.SetValues["replicaCount"]
	if !ok {
		return chartDefaultReplicas
	}
	n, err := strconv.ParseInt(v, 10, 32)
	require.NoError(r.t, err, "replicaCount %q", v)
	return int32(n)
}

// upgrade changes values (merged over the installed ones) without waiting; callers wait on conditions.
func (r *release) upgrade(values map[string]string) { r.upgradeTo(r.chart, values) }

// upgradeTo upgrades the release to another chart (directory or package) with changed values.
func (r *release) upgradeTo(chart string, values map[string]string) {
	r.t.Helper()
	for k, v := range values {
		r.opts.SetValues[k] = v
	}
	r.chart = chart
	helm.Upgrade(r.t, r.opts, chart, r.name)
}

func (r *release) deployment() *appsv1.Deployment {
	r.t.Helper()
	d, err := env.Client.AppsV1().Deployments(r.ns).Get(context.Background(), r.fullname(), metav1.GetOptions{})
	require.NoError(r.t, err)
	return d
}

func (r *release) pods() []corev1.Pod {
	return env.PodsOf(r.t, r.ns, r.selector())
}

// traffic starts every gated client (host and in-cluster; new connection per request and keep-alive
// POSTs) against the release's Service.
func traffic(t *testing.T, r *release) *disrupt.Traffic {
	t.Helper()
	return trafficTo(t, r.target(r.fullname()), disrupt.Options{})
}

// target is the release's Deployment and Service of that name (an umbrella chart's alias has its own).
func (r *release) target(name string) disrupt.Target {
	return disrupt.Target{Client: env.Client, Namespace: r.ns, Helm: r.opts, Release: r.name, Deployment: name, Service: name}
}

// trafficTo starts the load on a target with this suite's options: every client required (this machine
// is a node of the cluster), the imported image for the in-cluster clients, the cluster's propagation
// lag, and the suite's reports.
func trafficTo(t *testing.T, target disrupt.Target, o disrupt.Options) *disrupt.Traffic {
	t.Helper()
	o.Host, o.LoadImage, o.LoadImagePullPolicy = disrupt.HostAlways, appImage(t), corev1.PullNever
	o.ProxyMinSync, o.Reports, o.ControlURL, o.Kernel = proxyMinSync, reports, controlURL(t), kernel
	if env.Local != nil {
		o.ProxyMetrics = env.Local.ProxyMetricsURLs()
	}
	return disrupt.Start(t, target, o)
}

// settle is the pause between two disruptions (disrupt.Options.Settle for this cluster's lag).
func settle() time.Duration { return disrupt.Options{ProxyMinSync: proxyMinSync}.Settle() }

// proxyMinSync is the cluster's kube-proxy minSyncPeriod (assumed 1 s, the default, on other clusters).
var proxyMinSync = time.Second

// reports collects every run of the suite; the summary is printed at the end.
var reports = disrupt.NewReports(resultsDir())

// resultsDir is where the reports go: $GO_SERVICE_RESULTS or <repo>/results/live.
func resultsDir() string {
	if d := os.Getenv("GO_SERVICE_RESULTS"); d != "" {
		return d
	}
	root, _ := repo.Root()
	return filepath.Join(root, "results", "live")
}

// stop ends the load after the settle time and gates every client's run. In a first attempt (attempts)
// a failure the control clients shared skips the attempt instead, and the scenario is repeated; a
// repeat's runs are reported under the scenario's name with "(repeat)".
func stop(t *testing.T, tr *disrupt.Traffic, scenario string, e disrupt.Expect, floor time.Duration) []*disrupt.Run {
	t.Helper()
	s := disrupt.Scenario{Name: scenario, Expect: e, Floor: floor}
	if f, ok := repeatable.Load(t); ok {
		s.OnNoise = f.(func(string))
	}
	if strings.HasSuffix(t.Name(), "/attempt_2") {
		s.Name += " (repeat)"
	}
	return tr.Stop(t, s)
}

// repeatable holds, for a first attempt's *testing.T, what stop calls when the gates failed only where
// the control clients failed or stalled too.
var repeatable sync.Map

// repeated is attempts as a subtest's function.
func repeated(body func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { t.Helper(); attempts(t, body) }
}

// attempts runs a gated scenario as the subtest "attempt 1". When its gates fail only where the control
// clients failed or stalled too (the machine's or the cluster's noise, disrupt.Noisy), attempt 1 is
// skipped with what the controls saw (the end of the run lists it, its reports keep its violations)
// and the scenario runs once more as "attempt 2", which fails if it fails again, noise or not. Any
// other failure fails attempt 1 as always.
func attempts(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	var why string
	t.Run("attempt 1", func(t *testing.T) {
		repeatable.Store(t, func(w string) {
			why = w
			t.Skipf("the gates failed while the control clients failed or stalled too, or where the kernel recorded a SYN answered by a TIME_WAIT: the machine's or the cluster's noise, not the change's: %s; repeated once", w)
		})
		defer repeatable.Delete(t)
		body(t)
	})
	if why == "" {
		return
	}
	ran := false
	t.Run("attempt 2", func(t *testing.T) { ran = true; body(t) })
	if !ran {
		t.Errorf("attempt 1 was skipped as noise and attempt 2 did not run (a -run pattern that selects attempt 1 only?): nothing was proved")
	}
}

// concurrent lets a scenario run beside others (t.Parallel; `make e2e E2E_PARALLEL=2` runs two at a time):
// it works in namespaces of its own and touches no node, no setting of the cluster and nothing
// cluster-wide another scenario reads. The rest run alone, before them (Go resumes the parallel
// top-level tests once every other one has returned): the node drain, the replaced slow-propagation
// cluster, the autoscaler's CPU load, the lag measurement of check --live, the dry run's CRDs, the
// grace period's timing of SIGKILL, and the ct, chart-repository and deployer installs. Every gate stays
// as strict: a scenario that fails beside another is a finding (each report names the loads it overlapped).
func concurrent(t *testing.T) {
	t.Helper()
	shared(t)
	t.Parallel()
	if lostCluster != nil {
		t.Fatalf("the usual cluster was not restored after the slow-propagation scenarios: %v", lostCluster)
	}
}

// shared loads what the concurrent scenarios share into the current cluster (the reference service's
// two image tags, the control Service) while no other scenario runs, so that no image import lands
// inside another scenario's window.
func shared(t *testing.T) {
	t.Helper()
	appImage(t)
	appImageTagged(t, "0.1.1")
	controlURL(t)
}

// lostCluster is set when TestSlowPropagation could not put the usual cluster back.
var lostCluster error

// rolloutFloor is the shortest time n rollouts in a row can take with the chart's settings: each
// replaced pod must stay ready minReadySeconds, pods are replaced maxSurge at a time, and the suite
// leaves the settle time between two rollouts.
func rolloutFloor(n, replicas, surge, minReady int) time.Duration {
	steps := (replicas + surge - 1) / surge
	return time.Duration(n*steps*minReady)*time.Second + time.Duration(n-1)*settle()
}
