package live

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/test/kube"
)

// cpuLoad is the load that drives the autoscaler: requests that each keep a core busy for cpuPerRequest
// (the reference service's cpu= query), cpuRate a second: 750m of CPU on top of what the gated clients
// cost (about 200m over all the pods, measured with `kubectl top` on this project's machine). The HPA's
// target is 60% of a 200m request, 120m a pod:
//   - the gated clients alone keep it at its minimum of 2 (200m over 2 pods is 83% of the target);
//   - the CPU load makes it want more than 4 at once; its policy adds one pod per 15 s;
//   - while a rollout runs, the HPA counts a pod that is not ready, or that became ready less than one
//     metrics window ago (every new pod, in its first 5 minutes), as using nothing when it scales up, so
//     3 replicas, the surge pod and a new pod must still read above the target and its tolerance: about
//     950m over 6 pods of 120m is 132% (650m read 74% over 4 pods of 160m, and the HPA waited for the
//     rollout's end);
//   - once the load stops it wants fewer than 4 (200m over 4 pods is 69% of the target: 3).
const (
	cpuRate       = 30
	cpuPerRequest = 25 * time.Millisecond
)

// hpaActs are the values of the autoscaler scenario: an HPA of 2 to 4 on 60% of a 200m CPU request that
// adds one pod per 15 s (so that its steps are seen one by one), and removes pods as soon as the usage
// falls (no stabilization window, instead of the chart's 5 minutes, so that the scenario ends). The
// rollout keeps each new pod ready 10 s, so the HPA's next step lands while it runs.
var hpaActs = map[string]string{
	"autoscaling.enabled": "true", "autoscaling.minReplicas": "2", "autoscaling.maxReplicas": "4",
	"autoscaling.targetCPUUtilizationPercentage":                "60",
	"resources.requests.cpu":                                    "200m",
	"autoscaling.behavior.scaleUp.stabilizationWindowSeconds":   "0",
	"autoscaling.behavior.scaleUp.policies[0].type":             "Pods",
	"autoscaling.behavior.scaleUp.policies[0].value":            "1",
	"autoscaling.behavior.scaleUp.policies[0].periodSeconds":    "15",
	"autoscaling.behavior.scaleDown.stabilizationWindowSeconds": "0",
	"autoscaling.behavior.scaleDown.policies[0].type":           "Percent",
	"autoscaling.behavior.scaleDown.policies[0].value":          "100",
	"autoscaling.behavior.scaleDown.policies[0].periodSeconds":  "15",
	"minReadySeconds": "10",
}

// scaleChange is one change of the Deployment's spec.replicas.
type scaleChange struct {
	at       time.Time
	from, to int32
}

// hpaReading is what the HPA read and wanted at one of its syncs.
type hpaReading struct {
	at               time.Time
	cpu              int32 // the pods' average CPU utilisation, percent of the request
	current, desired int32
}

// scaleRecorder records every change of a Deployment's spec.replicas, and every new reading of its HPA
// (CPU utilisation, current and desired replicas), until stopped: the timeline a failure prints.
type scaleRecorder struct {
	mu       sync.Mutex
	changes  []scaleChange
	readings []hpaReading
	stops    []func()
	done     sync.WaitGroup
}

func recordScale(t *testing.T, r *release) *scaleRecorder {
	t.Helper()
	ctx := context.Background()
	name := metav1.ListOptions{FieldSelector: "metadata.name=" + r.fullname()}
	deploys, err := env.Client.AppsV1().Deployments(r.ns).Watch(ctx, name)
	require.NoError(t, err)
	hpas, err := env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Watch(ctx, name)
	if err != nil {
		deploys.Stop()
	}
	require.NoError(t, err)
	rec := &scaleRecorder{stops: []func(){deploys.Stop, hpas.Stop}}
	last := *r.deployment().Spec.Replicas
	rec.done.Add(2)
	go func() {
		defer rec.done.Done()
		for ev := range deploys.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || d.Spec.Replicas == nil || *d.Spec.Replicas == last {
				continue
			}
			rec.mu.Lock()
			rec.changes = append(rec.changes, scaleChange{at: time.Now(), from: last, to: *d.Spec.Replicas})
			rec.mu.Unlock()
			last = *d.Spec.Replicas
		}
	}()
	go func() {
		defer rec.done.Done()
		var prev hpaReading
		for ev := range hpas.ResultChan() {
			h, ok := ev.Object.(*autoscalingv2.HorizontalPodAutoscaler)
			if !ok {
				continue
			}
			rd := hpaReading{at: time.Now(), cpu: -1, current: h.Status.CurrentReplicas, desired: h.Status.DesiredReplicas}
			for _, m := range h.Status.CurrentMetrics {
				if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
					rd.cpu = *m.Resource.Current.AverageUtilization
				}
			}
			if rd.cpu == prev.cpu && rd.current == prev.current && rd.desired == prev.desired {
				continue
			}
			rec.mu.Lock()
			rec.readings = append(rec.readings, rd)
			rec.mu.Unlock()
			prev = rd
		}
	}()
	t.Cleanup(rec.Stop)
	return rec
}

// Stop ends the recording (idempotent).
func (s *scaleRecorder) Stop() {
	for _, stop := range s.stops {
		stop()
	}
	s.done.Wait()
}

// HPA is the HPA's readings: when it read what CPU utilisation, and the replicas it had and wanted.
func (s *scaleRecorder) HPA() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []string
	for _, r := range s.readings {
		cpu := "cpu unknown"
		if r.cpu >= 0 {
			cpu = fmt.Sprintf("cpu %d%%", r.cpu)
		}
		b = append(b, fmt.Sprintf("%s %s %d->%d", r.at.Format("15:04:05"), cpu, r.current, r.desired))
	}
	if len(b) == 0 {
		return "no HPA reading"
	}
	return strings.Join(b, ", ")
}

func (s *scaleRecorder) Changes() []scaleChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scaleChange(nil), s.changes...)
}

func (s *scaleRecorder) String() string {
	var b []string
	for _, c := range s.Changes() {
		b = append(b, fmt.Sprintf("%s %d->%d", c.at.Format("15:04:05.000"), c.from, c.to))
	}
	if len(b) == 0 {
		return "no change of spec.replicas"
	}
	return strings.Join(b, ", ")
}

// waitScaled waits until the HPA has set the Deployment to a scale that want accepts (what names it),
// rolled out; a failure prints the scale's changes and the HPA's readings when scale records them.
func waitScaled(t *testing.T, r *release, scale *scaleRecorder, what string, want func(int32) bool) {
	t.Helper()
	ctx := context.Background()
	err := kube.Poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		d := r.deployment()
		if d.Spec.Replicas == nil {
			return false, fmt.Errorf("no spec.replicas, want %s", what)
		}
		if !want(*d.Spec.Replicas) {
			return false, fmt.Errorf("spec.replicas %d, want %s", *d.Spec.Replicas, what)
		}
		return env.RolledOut(ctx, r.ns, r.fullname(), disrupt.AnyReplicas) // the HPA sets the count
	})
	if err != nil && scale != nil {
		require.NoError(t, err, "spec.replicas: %s\nHPA: %s\n%s", scale, scale.HPA(), env.Describe(r.ns))
	}
	require.NoError(t, err, env.Describe(r.ns))
}

// serviceURL is the release's Service on its ClusterIP (this machine is a node of the cluster).
func serviceURL(t *testing.T, r *release) string {
	t.Helper()
	svc, err := env.Client.CoreV1().Services(r.ns).Get(context.Background(), r.fullname(), metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, svc.Spec.Ports)
	return fmt.Sprintf("http://%s/", net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))))
}

// waitHPAActive waits until the HPA acts on the pods' CPU read from metrics-server (hpaActive) with the
// Deployment at want replicas, and the rollout is complete.
func waitHPAActive(t *testing.T, r *release, want int32) {
	t.Helper()
	ctx := context.Background()
	err := kube.Poll(ctx, 3*time.Minute, 500*time.Millisecond, func() (bool, error) {
		h, err := env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Get(ctx, r.fullname(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if err := hpaActive(h); err != nil {
			return false, err
		}
		if h.Status.CurrentReplicas != want {
			return false, fmt.Errorf("HPA: %d current replicas, want %d", h.Status.CurrentReplicas, want)
		}
		return env.RolledOut(ctx, r.ns, r.fullname(), disrupt.AnyReplicas) // the HPA sets the count
	})
	require.NoError(t, err, env.Describe(r.ns))
}

// hpaActive is nil when the HPA computes a scale from a resource metric it reads (ScalingActive True,
// ValidMetricFound, a current CPU utilisation): the autoscaler acts.
func hpaActive(h *autoscalingv2.HorizontalPodAutoscaler) error {
	active := false
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("HPA not scaling: %s: %s", c.Reason, c.Message)
			}
			active = c.Reason == "ValidMetricFound"
		}
	}
	if !active {
		return fmt.Errorf("HPA: no ScalingActive/ValidMetricFound condition yet (%d conditions)", len(h.Status.Conditions))
	}
	for _, m := range h.Status.CurrentMetrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			return nil
		}
	}
	return fmt.Errorf("HPA: no current CPU utilisation")
}

// startBlindHPA is the control of hpaActive: a Deployment of the reference service with no CPU request,
// and an HPA on its CPU utilisation (which the chart refuses to render): metrics-server has the pods'
// CPU, but the HPA cannot turn it into a share of a request, so it never acts. It returns the HPA's name.
func startBlindHPA(t *testing.T, ns, img string) string {
	t.Helper()
	ctx := context.Background()
	const name = "no-cpu-request"
	labels := map[string]string{"app": name}
	no, yes, uid, one := false, true, int64(65532), int32(1)
	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: img, ImagePullPolicy: corev1.PullNever,
					SecurityContext: &corev1.SecurityContext{
						RunAsNonRoot: &yes, RunAsUser: &uid, AllowPrivilegeEscalation: &no,
						Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	target := int32(50)
	_, err = env.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    &one, MaxReplicas: 2,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
			}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// blindHPAFails waits until the control HPA has read its pod's CPU and failed on the missing request
// (before metrics-server has the pod, it fails on missing metrics), and requires hpaActive to refuse it
// throughout: an HPA that cannot compute its metric never counts as acting.
func blindHPAFails(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	var verdict error
	err := kube.Poll(ctx, 2*time.Minute, 500*time.Millisecond, func() (bool, error) {
		h, err := env.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if verdict = hpaActive(h); verdict == nil {
			return true, nil
		}
		return strings.Contains(verdict.Error(), "missing request for cpu"), verdict
	})
	require.NoError(t, err, env.Describe(ns))
	require.Error(t, verdict, "the control HPA (no CPU request) must not count as acting")
	t.Logf("control: an HPA on pods with no CPU request is not acting: %v", verdict)
}

// 16. A real autoscaler: CPU load makes the HPA (on metrics-server's resource metrics) scale up while a
// rolling update runs, and scale down once the load stops. Every pod the HPA adds joins and every pod it
// removes leaves through the chart's readiness and preStop path: 0 failed for every gated client, and
// the CPU load's own requests all succeed too.
func TestAutoscalerUnderRollout(t *testing.T) { attempts(t, testAutoscalerUnderRollout) }

func testAutoscalerUnderRollout(t *testing.T) {
	ns := env.Namespace(t, "hpa-acts")
	control := startBlindHPA(t, ns, appImage(t))
	r := install(t, ns, hpaActs, true)
	waitHPAActive(t, r, 2)
	blindHPAFails(t, ns, control)
	url := serviceURL(t, r)
	scale := recordScale(t, r)
	tr := traffic(t, r)

	since := time.Now()
	tr.Mark("CPU load on")
	cpuCtx, stopCPU := context.WithCancel(context.Background())
	defer stopCPU()
	cpuDone := make(chan *load.Result, 1)
	go func() {
		res, err := load.Run(cpuCtx, load.Config{Name: "host GET cpu", URL: load.WithQuery(url, "cpu="+cpuPerRequest.String()), Rate: cpuRate})
		if err != nil {
			t.Errorf("CPU load: %v", err)
		}
		cpuDone <- res
	}()

	// The HPA's first step (2 to 3), then the rollout at once: its next step (3 to 4, 15 s later at the
	// earliest) must land while the rollout runs.
	err := kube.Poll(context.Background(), 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		if d := r.deployment(); *d.Spec.Replicas >= 3 {
			return true, nil
		}
		return false, fmt.Errorf("the HPA has not scaled up yet (%s)", scale)
	})
	require.NoError(t, err, "HPA: %s\n%s", scale.HPA(), env.Describe(ns))
	tr.Mark("the HPA scaled up to 3")
	from := time.Now()
	tr.Rollout(t, "rolling update while the HPA scales up", 4*time.Minute, func() {
		r.upgrade(map[string]string{"podAnnotations.rollout": fmt.Sprintf("hpa-%d", time.Now().UnixNano())})
	})
	to := time.Now()
	waitScaled(t, r, scale, "4", func(n int32) bool { return n == 4 })
	tr.Mark("the HPA at its maximum, 4")

	stopCPU()
	cpu := <-cpuDone
	tr.Mark("CPU load off")
	waitScaled(t, r, scale, "fewer than 4", func(n int32) bool { return n < 4 })
	tr.Mark("the HPA scaled down")
	runs := stop(t, tr, "HPA scales up during a rollout, then down", disrupt.ZeroFailures, rolloutFloor(1, 3, 1, 10))
	scale.Stop()
	require.NotEmpty(t, runs)

	t.Logf("spec.replicas: %s; rollout %s to %s", scale, from.Format("15:04:05.000"), to.Format("15:04:05.000"))
	t.Logf("HPA: %s", scale.HPA())
	var upInRollout, down bool
	for _, c := range scale.Changes() {
		upInRollout = upInRollout || (c.to > c.from && c.at.After(from) && c.at.Before(to))
		down = down || (c.to < c.from && c.at.After(to))
	}
	assert.True(t, upInRollout, "the HPA scaled up while the rollout ran (%s)", scale)
	assert.True(t, down, "the HPA scaled down after the load stopped (%s)", scale)
	least := tr.Timeline().MinReady(r.fullname(), since)
	assert.GreaterOrEqual(t, least, 2, "ready endpoints never below minReplicas (fewest %d)", least)
	if assert.NotNil(t, cpu, "the CPU load ran") {
		t.Logf("CPU load: %s", cpu.Summary())
		assert.Zero(t, cpu.Failed, "the CPU load's requests all succeeded: %s", load.Kinds(cpu.ByKind))
		assert.Greater(t, cpu.Sent, cpuRate*30, "the CPU load ran through the scale-up and the rollout")
	}
}
