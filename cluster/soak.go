package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/internal/repo"
)

// SoakCycle is one cycle of the harness soak: a 1-node cluster up, a 2-node cluster up in its place, a
// pod on each node serving through a Service, the cluster down, and what it left behind.
type SoakCycle struct {
	N          int
	Up1, Up2   time.Duration // time to a ready 1-node and 2-node cluster
	Serve      time.Duration // from creating the Deployment to both pods answering through the Service
	DownIn     time.Duration
	Residue    []string
	Err        error // the first step that failed, nil for a good cycle
	FailedStep string
}

// SoakResult is a soak's cycles.
type SoakResult struct{ Cycles []SoakCycle }

// Failures counts the cycles that failed.
func (r SoakResult) Failures() int {
	n := 0
	for _, c := range r.Cycles {
		if c.Err != nil {
			n++
		}
	}
	return n
}

// ResidueItems counts what the cycles left behind, all together.
func (r SoakResult) ResidueItems() int {
	n := 0
	for _, c := range r.Cycles {
		n += len(c.Residue)
	}
	return n
}

// Summary is the soak's closing lines: cycles, failures, residue and up times (median and max).
func (r SoakResult) Summary() string {
	var up1, up2 []time.Duration
	for _, c := range r.Cycles {
		if c.Up1 > 0 {
			up1 = append(up1, c.Up1)
		}
		if c.Up2 > 0 {
			up2 = append(up2, c.Up2)
		}
	}
	return fmt.Sprintf("soak: %d cycle(s), %d failure(s), %d residue item(s); up 1 node: median %s max %s; up 2 nodes: median %s max %s\n",
		len(r.Cycles), r.Failures(), r.ResidueItems(), median(up1), maxOf(up1), median(up2), maxOf(up2))
}

func median(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return m.Round(100 * time.Millisecond).String()
}

func maxOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return slices.Max(ds).Round(100 * time.Millisecond).String()
}

func (c SoakCycle) String() string {
	status := "ok"
	if c.Err != nil {
		status = "FAILED at " + c.FailedStep
	}
	return fmt.Sprintf("cycle %2d: %-24s up 1 node %-7s up 2 nodes %-7s serve %-7s down %-7s residue %d",
		c.N, status, c.Up1.Round(100*time.Millisecond), c.Up2.Round(100*time.Millisecond), c.Serve.Round(100*time.Millisecond),
		c.DownIn.Round(100*time.Millisecond), len(c.Residue))
}

// soakImage is the reference service, the pods the soak serves through its Service.
const soakImage = "go-service-soak/go-service:1"

// Soak runs cycles of the harness's whole life and writes a line per cycle to out, then the summary. It
// starts from whatever is there (a running cluster is replaced) and leaves nothing behind. A cycle's
// failure is recorded (with the component's log tail) and the next cycle runs; the error is only for
// what stops the soak itself (the image build, a cancelled context).
func Soak(ctx context.Context, o Options, cycles int, out io.Writer) (SoakResult, error) {
	var res SoakResult
	if err := o.defaults(); err != nil {
		return res, err
	}
	root, err := repo.Root()
	if err != nil {
		return res, err
	}
	tar, err := image.Build(ctx, image.Spec{Ref: soakImage, Package: "./cmd/go-service", Tags: []string{"service_only"}, Dir: root, Binary: "/go-service"},
		filepath.Join(o.CacheDir, "images", "soak"))
	if err != nil {
		return res, fmt.Errorf("soak image: %w", err)
	}
	for i := 1; i <= cycles; i++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		c := soakCycle(ctx, o, i, tar)
		res.Cycles = append(res.Cycles, c)
		fmt.Fprintln(out, c)
		if c.Err != nil {
			fmt.Fprintf(out, "  cycle %d failed at %s: %v\n", i, c.FailedStep, c.Err)
		}
		for _, r := range c.Residue {
			fmt.Fprintf(out, "  residue: %s\n", r)
		}
	}
	fmt.Fprint(out, res.Summary())
	return res, nil
}

func soakCycle(ctx context.Context, o Options, n int, tar string) SoakCycle {
	c := SoakCycle{N: n}
	quiet := o
	quiet.Log = func(string, ...any) {}
	var cl *Cluster
	steps := []struct {
		name string
		run  func() error
	}{
		{"up 1 node", func() error {
			o1 := quiet
			o1.Nodes = 1
			t := time.Now()
			_, err := Up(ctx, o1)
			c.Up1 = time.Since(t)
			return err
		}},
		{"up 2 nodes", func() error {
			o2 := quiet
			o2.Nodes = 2
			t := time.Now()
			var err error
			cl, err = Up(ctx, o2)
			c.Up2 = time.Since(t)
			return err
		}},
		{"serve on each node", func() error {
			t := time.Now()
			err := serveOnEachNode(ctx, cl, tar)
			c.Serve = time.Since(t)
			return err
		}},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			c.Err, c.FailedStep = err, s.name
			break
		}
	}
	t := time.Now()
	if err := Down(ctx, quiet); err != nil && c.Err == nil {
		c.Err, c.FailedStep = err, "down"
	}
	c.DownIn = time.Since(t)
	c.Residue = Residue()
	if len(c.Residue) > 0 && c.Err == nil {
		c.Err, c.FailedStep = fmt.Errorf("%d residue item(s)", len(c.Residue)), "residue check"
	}
	return c
}

// serveOnEachNode runs the reference service on every node (one pod each, required anti-affinity)
// behind a ClusterIP Service and waits until every pod has answered through the Service from the host.
func serveOnEachNode(ctx context.Context, c *Cluster, tar string) error {
	if err := c.LoadImage(ctx, tar); err != nil {
		return err
	}
	client, err := Client(c.Kubeconfig)
	if err != nil {
		return err
	}
	ns := "soak"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"app": "soak"}
	replicas := int32(len(c.Nodes))
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "soak"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: corev1.LabelHostname}}}},
					Containers: []corev1.Container{{
						Name: "app", Image: soakImage, ImagePullPolicy: corev1.PullNever,
						Env:            []corev1.EnvVar{{Name: "GO_SERVICE_PRESTOP_DELAY", Value: "0s"}},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
					}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	svc, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "soak"}, Spec: corev1.ServiceSpec{
		Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	err = Poll(ctx, 90*time.Second, 250*time.Millisecond, func() (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "soak", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ReadyReplicas == replicas, fmt.Errorf("%d of %d pods ready", d.Status.ReadyReplicas, replicas)
	})
	if err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	want, nodes := map[string]string{}, map[string]bool{} // pod -> node
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			want[p.Name], nodes[p.Spec.NodeName] = p.Spec.NodeName, true
		}
	}
	if len(nodes) != len(c.Nodes) {
		return fmt.Errorf("pods on %d of %d nodes: %v", len(nodes), len(c.Nodes), want)
	}
	seen := map[string]bool{}
	// A new connection per request: kube-proxy picks a backend per connection.
	httpc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + svc.Spec.ClusterIP + "/"
	err = Poll(ctx, 60*time.Second, 50*time.Millisecond, func() (bool, error) {
		resp, err := httpc.Get(url)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		for pod := range want {
			if strings.Contains(string(body), "pod="+pod+" ") {
				seen[pod] = true
			}
		}
		return len(seen) == len(want), fmt.Errorf("answered by %d of %d pods (%v)", len(seen), len(want), want)
	})
	if err != nil {
		return fmt.Errorf("service %s: %w", url, err)
	}
	return nil
}
