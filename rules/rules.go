// Package rules checks Kubernetes objects against the rules a Deployment must follow to roll out, drain
// and be evicted without dropping a request: a rollout that never goes below full capacity, probes that
// tell a starting, ready and stuck pod apart, a preStop delay that bridges endpoint propagation inside the
// grace period, a PodDisruptionBudget that protects without blocking node drains, pods spread across nodes.
//
// It works on any chart's output (or any manifests): every Deployment is checked with the objects that
// concern it (the HorizontalPodAutoscaler that scales it, the PodDisruptionBudgets that select its pods).
// Each broken rule is a Violation that names the object, the field and what to change.
package rules

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/version"
)

// Violation is one broken rule.
type Violation struct {
	// Rule names the rule, e.g. "rollout.max-unavailable" (stable: match on it, not on Message).
	Rule string `json:"rule"`
	// Object is the object at fault, as Kind/namespace/name (namespace omitted when empty).
	Object string `json:"object"`
	// Field is the field at fault, as a path in the object (spec.strategy.rollingUpdate.maxUnavailable).
	Field string `json:"field"`
	// Message says what is wrong and why it drops requests.
	Message string `json:"message"`
	// Fix says what to change.
	Fix string `json:"fix"`
}

func (v Violation) Error() string {
	return fmt.Sprintf("%s %s: %s. %s", v.Object, v.Field, v.Message, v.Fix)
}

// Options tune the checks.
type Options struct {
	// KubeVersion is the cluster version the objects are for, e.g. "1.34.0" (required: some rules
	// depend on it, such as the native preStop sleep from 1.30).
	KubeVersion string
	// InAppDelayEnv names an environment variable that holds the app's own shutdown delay (a Go
	// duration), accepted in place of a preStop hook. go-service's contract uses GO_SERVICE_SHUTDOWN_DELAY.
	InAppDelayEnv string
}

// DefaultInAppDelayEnv is the go-service contract's shutdown-delay variable.
const DefaultInAppDelayEnv = "GO_SERVICE_SHUTDOWN_DELAY"

// Check checks every Deployment among objs and returns the violations, ordered by object and rule.
// No Deployment is itself a violation: there is nothing that rolls.
func Check(objs []runtime.Object, opt Options) ([]Violation, error) {
	if opt.KubeVersion == "" {
		return nil, fmt.Errorf("rules: Options.KubeVersion is required")
	}
	kube, err := version.ParseGeneric(opt.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("rules: KubeVersion %q: %w", opt.KubeVersion, err)
	}
	if opt.InAppDelayEnv == "" {
		opt.InAppDelayEnv = DefaultInAppDelayEnv
	}
	var deps []*appsv1.Deployment
	var hpas []*autoscalingv2.HorizontalPodAutoscaler
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		switch x := o.(type) {
		case *appsv1.Deployment:
			deps = append(deps, x)
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpas = append(hpas, x)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, x)
		}
	}
	if len(deps) == 0 {
		return []Violation{{Rule: "workload.deployment", Object: "(manifests)", Field: "kind", Message: "no Deployment", Fix: "These rules check Deployments; render the chart's workload"}}, nil
	}
	var out []Violation
	for _, d := range deps {
		w := &workload{d: d, kube: kube, opt: opt}
		for _, h := range hpas {
			ref := h.Spec.ScaleTargetRef
			if ref.Kind == "Deployment" && ref.Name == d.Name && h.Namespace == d.Namespace {
				w.hpa = h
			}
		}
		for _, p := range pdbs {
			if p.Namespace != d.Namespace || p.Spec.Selector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				w.pdbs = append(w.pdbs, p)
			}
		}
		for _, r := range all {
			r.check(w)
		}
		out = append(out, w.out...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out, nil
}

// workload is one Deployment with the objects that concern it, and the violations found so far.
type workload struct {
	d    *appsv1.Deployment
	hpa  *autoscalingv2.HorizontalPodAutoscaler
	pdbs []*policyv1.PodDisruptionBudget
	kube *version.Version
	opt  Options
	out  []Violation
}

func (w *workload) add(rule, object, field, fix, format string, args ...any) {
	w.out = append(w.out, Violation{Rule: rule, Object: object, Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (w *workload) name() string { return objectName("Deployment", w.d.ObjectMeta) }

func objectName(kind string, m metav1.ObjectMeta) string {
	if m.Namespace == "" {
		return kind + "/" + m.Name
	}
	return kind + "/" + m.Namespace + "/" + m.Name
}

// replicas is the number of pods the workload runs at least: the HPA's minimum when one scales it.
func (w *workload) replicas() int32 {
	if w.hpa != nil {
		if w.hpa.Spec.MinReplicas != nil {
			return *w.hpa.Spec.MinReplicas
		}
		return 1
	}
	if w.d.Spec.Replicas == nil {
		return 1 // the API server's default
	}
	return *w.d.Spec.Replicas
}

// checkSecurity: no container (app, sidecar or init container) is privileged or runs as root by its own
// or the pod's securityContext: a sidecar is as much the pod as the app is.
func checkSecurity(w *workload) {
	spec := w.d.Spec.Template.Spec
	pod := spec.SecurityContext
	for _, list := range []struct {
		field      string
		containers []corev1.Container
	}{{"containers", spec.Containers}, {"initContainers", spec.InitContainers}} {
		for _, c := range list.containers {
			field := fmt.Sprintf("spec.template.spec.%s[%s].securityContext", list.field, c.Name)
			sc := c.SecurityContext
			if sc != nil && sc.Privileged != nil && *sc.Privileged {
				w.add("security.privileged", w.name(), field+".privileged", "Remove privileged unless the container is a node agent",
					"container %s is privileged: it has every capability and the node's devices", c.Name)
			}
			if at, root := runsAsRoot(pod, sc, field); root {
				w.add("security.root", w.name(), at, "Run it as a non-root UID (runAsNonRoot true, runAsUser other than 0)",
					"container %s may run as root: a compromise of it owns the pod's volumes and what the container can reach", c.Name)
			}
		}
	}
}

// runsAsRoot says whether a container's effective securityContext (its own over the pod's) asks for
// root (runAsUser 0, or runAsNonRoot false with no runAsUser), and which field does, as a path in the
// Deployment (container is the container's securityContext path): a container that asks nothing runs as
// its image says, which these rules cannot see.
func runsAsRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext, container string) (string, bool) {
	const podField = "spec.template.spec.securityContext"
	var user, nonRoot string // where each is set
	var uid *int64
	var nr *bool
	if pod != nil && pod.RunAsUser != nil {
		uid, user = pod.RunAsUser, podField+".runAsUser"
	}
	if pod != nil && pod.RunAsNonRoot != nil {
		nr, nonRoot = pod.RunAsNonRoot, podField+".runAsNonRoot"
	}
	if c != nil && c.RunAsUser != nil {
		uid, user = c.RunAsUser, container+".runAsUser"
	}
	if c != nil && c.RunAsNonRoot != nil {
		nr, nonRoot = c.RunAsNonRoot, container+".runAsNonRoot"
	}
	switch {
	case uid != nil && *uid == 0:
		return user, true
	case uid == nil && nr != nil && !*nr: // no UID asked for: the image's, which may be root
		return nonRoot, true
	}
	return "", false
}

// serving lists the containers that take traffic: those with ports, or the first one.
func (w *workload) serving() []corev1.Container {
	var out []corev1.Container
	for _, c := range w.d.Spec.Template.Spec.Containers {
		if len(c.Ports) > 0 {
			out = append(out, c)
		}
	}
	if len(out) == 0 && len(w.d.Spec.Template.Spec.Containers) > 0 {
		out = append(out, w.d.Spec.Template.Spec.Containers[0])
	}
	return out
}

type rule struct {
	name  string
	check func(w *workload)
}

// all are the rules, in the order they are reported.
var all = []rule{
	{"replicas", checkReplicas},
	{"rollout", checkRollout},
	{"probes", checkProbes},
	{"shutdown", checkShutdown},
	{"disruption", checkDisruption},
	{"spread", checkSpread},
	{"security", checkSecurity},
}

// ReplicasAnnotation marks a Deployment whose chart leaves spec.replicas to the autoscaler and renders
// the live scale in the one case where leaving it out would reset it (go-service's autoscaledReplicas):
// turning autoscaling on for a running release.
const ReplicasAnnotation = "go-service/replicas"

func checkReplicas(w *workload) {
	if w.hpa != nil {
		switch {
		case w.d.Spec.Replicas == nil && w.d.Annotations[ReplicasAnnotation] != "autoscaler":
			w.add("replicas.hpa-null", w.name(), "spec.replicas", "Render the live replica count while the release still renders replicas (as go-service does, marking the Deployment "+ReplicasAnnotation+": autoscaler once it leaves them out)",
				"the HPA owns the scale but replicas is left out of a chart that renders it with autoscaling off: turning autoscaling on for a running release patches it to null, which the API server makes 1 (helm/helm#12650)")
		case w.d.Spec.Replicas != nil && *w.d.Spec.Replicas < w.replicas():
			w.add("replicas.below-hpa-minimum", w.name(), "spec.replicas", "Render at least the HPA's minReplicas",
				"replicas %d are below the HPA's minReplicas %d: an upgrade would scale below the minimum", *w.d.Spec.Replicas, w.replicas())
		}
	}
	if n := w.replicas(); n < 2 {
		field := "spec.replicas"
		if w.hpa != nil {
			field = "HorizontalPodAutoscaler spec.minReplicas"
		}
		w.add("replicas.single", w.name(), field, "Run at least 2 replicas",
			"replicas %d: a single pod cannot survive a drain, an eviction or a node failure", n)
	}
}

func checkRollout(w *workload) {
	s := w.d.Spec.Strategy
	if s.Type == appsv1.RecreateDeploymentStrategyType {
		w.add("rollout.recreate", w.name(), "spec.strategy.type", "Use RollingUpdate with maxUnavailable 0",
			"strategy Recreate stops every pod before starting the new ones")
		return
	}
	var mu, ms *intstr.IntOrString
	if s.RollingUpdate != nil {
		mu, ms = s.RollingUpdate.MaxUnavailable, s.RollingUpdate.MaxSurge
	}
	n := w.replicas()
	switch {
	case mu == nil:
		w.add("rollout.max-unavailable", w.name(), "spec.strategy.rollingUpdate.maxUnavailable", "Set maxUnavailable to 0",
			"maxUnavailable is unset, so the API server makes it 25%%: from 4 replicas a rollout stops pods before their replacements are ready")
	case mu.String() != "0" && mu.String() != "0%":
		// A percentage that rounds to 0 pods today does not at a larger scale: judge the setting, not the count.
		w.add("rollout.max-unavailable", w.name(), "spec.strategy.rollingUpdate.maxUnavailable", "Set maxUnavailable to 0",
			"maxUnavailable %s is not 0: a rollout goes below full capacity", mu.String())
	}
	if ms != nil && scaled(ms, n, true) < 1 {
		w.add("rollout.max-surge", w.name(), "spec.strategy.rollingUpdate.maxSurge", "Set maxSurge to 1 or more (25% is the usual default)",
			"maxSurge %s does not add a pod: with maxUnavailable 0 the rollout cannot progress", ms.String())
	}
}

func checkProbes(w *workload) {
	for _, c := range w.serving() {
		field := func(f string) string { return fmt.Sprintf("spec.template.spec.containers[%s].%s", c.Name, f) }
		rp, lp, sp := c.ReadinessProbe, c.LivenessProbe, c.StartupProbe
		if rp == nil {
			w.add("probes.readiness", w.name(), field("readinessProbe"), "Add a readiness probe that fails while the app drains",
				"no readiness probe: the pod gets traffic before it can serve and keeps it while it drains")
		}
		if lp == nil {
			w.add("probes.liveness", w.name(), field("livenessProbe"), "Add a liveness probe on an endpoint that only fails when the process is stuck",
				"no liveness probe: a stuck pod keeps its place in the Service")
		}
		if sp == nil && lp != nil {
			w.add("probes.startup", w.name(), field("startupProbe"), "Add a startup probe so liveness starts after the app is up",
				"no startup probe: a slow start is judged by the liveness probe, which can kill the pod in a loop")
		}
		for name, p := range map[string]*corev1.Probe{"startupProbe": sp, "readinessProbe": rp, "livenessProbe": lp} {
			if p != nil && p.HTTPGet != nil && !hasPort(c, p.HTTPGet.Port) {
				w.add("probes.port", w.name(), field(name+".httpGet.port"), "Point it at a container port (name or number)",
					"port %s is not a port of the container", p.HTTPGet.Port.String())
			}
		}
		if rp != nil && lp != nil {
			if rp.HTTPGet != nil && lp.HTTPGet != nil && rp.HTTPGet.Path == lp.HTTPGet.Path && rp.HTTPGet.Port == lp.HTTPGet.Port {
				w.add("probes.shared-path", w.name(), field("livenessProbe.httpGet.path"), "Give liveness its own endpoint that stays up while the app drains",
					"liveness and readiness share the path %s: a draining pod fails both and is restarted mid-drain", rp.HTTPGet.Path)
			}
			lt, rt := probeWindow(lp), probeWindow(rp)
			if lt <= rt {
				w.add("probes.liveness-tolerance", w.name(), field("livenessProbe"), "Raise the liveness periodSeconds or failureThreshold",
					"liveness (%ds to fail) is not more tolerant than readiness (%ds): a slow pod is restarted before it is taken out of the Service", lt, rt)
			}
		}
	}
}

// probeWindow is how long a probe takes to fail, with the API server's defaults.
func probeWindow(p *corev1.Probe) int32 {
	period, threshold := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if threshold == 0 {
		threshold = 3
	}
	return period * threshold
}

func checkShutdown(w *workload) {
	pod := w.d.Spec.Template.Spec
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	graceField := "spec.template.spec.terminationGracePeriodSeconds"
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	for _, c := range w.serving() {
		field := fmt.Sprintf("spec.template.spec.containers[%s].lifecycle.preStop", c.Name)
		hook, delay := PreStop(c)
		switch hook {
		case "":
			delay = envSeconds(c, w.opt.InAppDelayEnv)
			if delay <= 0 {
				w.add("shutdown.prestop", w.name(), field, "Add a preStop sleep (5 s or your endpoint propagation time), or delay shutdown in the app",
					"no preStop hook and no in-app shutdown delay: the app stops accepting while kube-proxy and load balancers still send it new connections")
				continue
			}
		case "sleep", "exec":
			if hook == "sleep" && !w.kube.AtLeast(version.MustParseGeneric("1.30.0")) {
				w.add("shutdown.sleep-version", w.name(), field+".sleep", "Use an exec sleep before Kubernetes 1.30",
					"the preStop sleep action needs Kubernetes 1.30; this is %s", w.kube.String())
			}
			if delay == 0 {
				w.add("shutdown.prestop", w.name(), field, "Sleep 5 s or your endpoint propagation time",
					"the preStop hook waits 0 s: it does not bridge endpoint propagation")
			}
		default:
			// An httpGet hook waits as long as the app's handler does: the in-app delay when it is declared.
			delay = envSeconds(c, w.opt.InAppDelayEnv)
		}
		if delay >= grace {
			w.add("shutdown.grace", w.name(), graceField, "Raise terminationGracePeriodSeconds above the preStop delay plus the app's drain time",
				"the preStop delay (%ds) is not shorter than the grace period (%ds): the app is killed before it gets SIGTERM", delay, grace)
		}
	}
}

func checkDisruption(w *workload) {
	n := w.replicas()
	switch len(w.pdbs) {
	case 0:
		w.add("disruption.pdb", w.name(), "(PodDisruptionBudget)", "Add a PodDisruptionBudget with maxUnavailable 1 that selects the pods (with 2 or more replicas)",
			"no PodDisruptionBudget selects the pods: a node drain can evict them all at once")
		return
	case 1:
	default:
		w.add("disruption.pdb-count", w.name(), "(PodDisruptionBudget)", "Keep one budget per workload",
			"%d PodDisruptionBudgets select the pods: the eviction API refuses every eviction", len(w.pdbs))
		return
	}
	p := w.pdbs[0]
	name := objectName("PodDisruptionBudget", p.ObjectMeta)
	s := p.Spec
	switch {
	case s.MaxUnavailable != nil && scaled(s.MaxUnavailable, n, true) < 1:
		w.add("disruption.blocking", name, "spec.maxUnavailable", "Set maxUnavailable to 1",
			"maxUnavailable %s allows no eviction: every node drain blocks", s.MaxUnavailable.String())
	case s.MinAvailable != nil && scaled(s.MinAvailable, n, true) >= n:
		w.add("disruption.blocking", name, "spec.minAvailable", "Lower minAvailable below the replica count, or use maxUnavailable 1",
			"minAvailable %s allows no eviction with %d replicas: every node drain blocks", s.MinAvailable.String(), n)
	case s.MaxUnavailable == nil && s.MinAvailable == nil:
		w.add("disruption.empty", name, "spec", "Set maxUnavailable to 1",
			"the budget sets neither minAvailable nor maxUnavailable")
	case n >= 2 && s.MinAvailable != nil && scaled(s.MinAvailable, n, true) < 1:
		w.add("disruption.all-at-once", name, "spec.minAvailable", "Set maxUnavailable to 1",
			"minAvailable %s lets evictions take all %d pods at once: a node drain can stop every pod before a replacement is ready", s.MinAvailable.String(), n)
	case n >= 2 && s.MinAvailable == nil && scaled(s.MaxUnavailable, n, true) >= n:
		w.add("disruption.all-at-once", name, "spec.maxUnavailable", "Set maxUnavailable to 1",
			"maxUnavailable %s lets evictions take all %d pods at once: a node drain can stop every pod before a replacement is ready", s.MaxUnavailable.String(), n)
	}
	if w.kube.AtLeast(version.MustParseGeneric("1.27.0")) && (s.UnhealthyPodEvictionPolicy == nil || *s.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow) {
		w.add("disruption.unhealthy-policy", name, "spec.unhealthyPodEvictionPolicy", "Set it to AlwaysAllow",
			"unhealthy pods count against the budget: a crash-looping pod blocks node drains")
	}
}

func checkSpread(w *workload) {
	pod := w.d.Spec.Template.Spec
	if w.replicas() < 2 {
		return
	}
	for _, t := range pod.TopologySpreadConstraints {
		if t.TopologyKey == corev1.LabelHostname && t.LabelSelector != nil {
			return
		}
	}
	if a := pod.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if t.TopologyKey == corev1.LabelHostname {
				return
			}
		}
		for _, t := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if t.PodAffinityTerm.TopologyKey == corev1.LabelHostname {
				return
			}
		}
	}
	w.add("spread.nodes", w.name(), "spec.template.spec.topologySpreadConstraints", "Spread the pods over kubernetes.io/hostname (topologySpreadConstraints or pod anti-affinity)",
		"the pods are not spread across nodes: one node failure or drain can take them all")
}

// PreStop describes a container's preStop hook: its kind ("" without a hook, "sleep", "exec", "httpGet"
// or "other") and how long it waits when the manifest says so (the sleep action's seconds, the last
// argument of an exec hook when it is a number, as in sleep 5), else -1.
func PreStop(c corev1.Container) (hook string, seconds int64) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return "", -1
	}
	ps := c.Lifecycle.PreStop
	switch {
	case ps.Sleep != nil:
		return "sleep", ps.Sleep.Seconds
	case ps.Exec != nil:
		if n := len(ps.Exec.Command); n > 0 {
			if secs, err := strconv.ParseFloat(ps.Exec.Command[n-1], 64); err == nil {
				return "exec", int64(secs)
			}
		}
		return "exec", -1
	case ps.HTTPGet != nil:
		return "httpGet", -1
	}
	return "other", -1
}

// PreStopDelayEnv is the go-service contract's variable for how long the app's preStop endpoint waits
// (the chart's preStop mode httpGet).
const PreStopDelayEnv = "GO_SERVICE_PRESTOP_DELAY"

// Delay is how long a container keeps serving after its pod starts terminating, as its manifest says:
// a preStop sleep or exec sleep's seconds ("sleep 5s", "exec 5s"); with no hook, the app's own delay in
// the environment variable inAppEnv ("in-app 5s"); with an httpGet hook, which waits as long as the
// app's handler does, the contract's PreStopDelayEnv plus inAppEnv ("httpGet, in-app 5s"). seconds is
// -1 where the manifest does not say ("none" with no in-app delay is 0).
func Delay(c corev1.Container, inAppEnv string) (what string, seconds int64) {
	hook, secs := PreStop(c)
	switch hook {
	case "sleep", "exec":
		if secs < 0 {
			return hook + ", its delay not in the manifest", -1
		}
		return fmt.Sprintf("%s %ds", hook, secs), secs
	case "":
		if secs = envSeconds(c, inAppEnv); secs > 0 {
			return fmt.Sprintf("in-app %ds (%s)", secs, inAppEnv), secs
		}
		return "none", 0
	}
	handler, after := envSeconds(c, PreStopDelayEnv), envSeconds(c, inAppEnv)
	if handler < 0 && after < 0 {
		return hook + ", its delay not in the manifest", -1
	}
	secs = max(handler, 0) + max(after, 0)
	return fmt.Sprintf("%s, in-app %ds (%s, %s)", hook, secs, PreStopDelayEnv, inAppEnv), secs
}

// scaled resolves an int-or-percent against a replica count, as the Deployment and disruption controllers
// do (roundUp for surge and budget values, round down for maxUnavailable).
func scaled(v *intstr.IntOrString, replicas int32, roundUp bool) int32 {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(replicas), roundUp)
	if err != nil {
		return -1
	}
	return int32(n)
}

// envSeconds returns the whole seconds of a duration-valued environment variable, -1 if absent or invalid.
func envSeconds(c corev1.Container, name string) int64 {
	for _, e := range c.Env {
		if e.Name == name {
			d, err := time.ParseDuration(strings.TrimSpace(e.Value))
			if err != nil {
				return -1
			}
			return int64(d / time.Second)
		}
	}
	return -1
}

func hasPort(c corev1.Container, port intstr.IntOrString) bool {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}
