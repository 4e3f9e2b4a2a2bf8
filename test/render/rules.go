package render

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/version"
)

// ZeroDowntimeViolations checks a rendered release against the rules a Deployment must follow to roll,
// drain and be evicted without dropping a request, and returns every rule it breaks (none: it complies).
// kubeVersion is the version the release was rendered for.
func ZeroDowntimeViolations(r *Result, kubeVersion string) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	deps := All[*appsv1.Deployment](r)
	if len(deps) != 1 {
		return []string{fmt.Sprintf("want exactly one Deployment, got %d", len(deps))}
	}
	d := deps[0]
	hpas := All[*autoscalingv2.HorizontalPodAutoscaler](r)

	// Replicas: at least two, from the Deployment or the HPA minimum.
	replicas := int32(1)
	switch {
	case len(hpas) == 1:
		if hpas[0].Spec.MinReplicas != nil {
			replicas = *hpas[0].Spec.MinReplicas
		}
		switch {
		case d.Spec.Replicas == nil:
			add("the HPA owns the scale but the Deployment has no replicas: turning autoscaling on for a running release sets it to null, which the API server makes 1 (helm/helm#12650)")
		case *d.Spec.Replicas < replicas:
			add("the Deployment's replicas %d are below the HPA's minReplicas %d: an upgrade would scale below the minimum", *d.Spec.Replicas, replicas)
		}
	case d.Spec.Replicas != nil:
		replicas = *d.Spec.Replicas
	}
	if replicas < 2 {
		add("replicas %d: a single pod cannot survive a drain", replicas)
	}

	// Rollout: never below full capacity, and able to progress.
	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil {
		add("strategy %q is not RollingUpdate", s.Type)
	} else {
		mu, ms := s.RollingUpdate.MaxUnavailable, s.RollingUpdate.MaxSurge
		if mu == nil || scaled(mu, replicas, false) != 0 {
			add("maxUnavailable %v is not 0", mu)
		}
		if ms == nil || scaled(ms, replicas, true) < 1 {
			add("maxSurge %v does not add a pod", ms)
		}
	}

	// Probes and ports.
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return append(v, "no container")
	}
	c := pod.Containers[0]
	rp, lp := c.ReadinessProbe, c.LivenessProbe
	if rp == nil {
		add("no readiness probe")
	}
	if lp == nil {
		add("no liveness probe")
	}
	if c.StartupProbe == nil {
		add("no startup probe")
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": rp, "liveness": lp} {
		if p != nil && p.HTTPGet != nil && !hasPort(c, p.HTTPGet.Port) {
			add("%s probe port %s is not a container port", name, p.HTTPGet.Port.String())
		}
	}
	if rp != nil && lp != nil {
		if rp.HTTPGet != nil && lp.HTTPGet != nil && rp.HTTPGet.Path == lp.HTTPGet.Path {
			add("liveness and readiness share the path %s", rp.HTTPGet.Path)
		}
		if lp.PeriodSeconds*lp.FailureThreshold <= rp.PeriodSeconds*rp.FailureThreshold {
			add("liveness (%ds to fail) is not more tolerant than readiness (%ds)",
				lp.PeriodSeconds*lp.FailureThreshold, rp.PeriodSeconds*rp.FailureThreshold)
		}
	}

	// Shutdown: a preStop delay of the right kind, inside the grace period.
	// With no hook, the app must wait itself (GO_SERVICE_SHUTDOWN_DELAY, the chart's preStop mode none).
	delay := int64(-1)
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		inApp := envDuration(c, "GO_SERVICE_SHUTDOWN_DELAY")
		if inApp <= 0 {
			add("no preStop hook and no in-app shutdown delay: endpoints are still being removed when the app stops accepting")
		}
		delay = inApp
	} else {
		ps := c.Lifecycle.PreStop
		switch {
		case ps.Sleep != nil:
			delay = ps.Sleep.Seconds
			if !atLeast(kubeVersion, "1.30.0") {
				add("preStop sleep action on Kubernetes %s (needs 1.30)", kubeVersion)
			}
			if delay == 0 {
				add("preStop sleep of 0 seconds")
			}
		case ps.Exec != nil:
			if n := len(ps.Exec.Command); n > 0 {
				if secs, err := strconv.ParseInt(ps.Exec.Command[n-1], 10, 64); err == nil {
					delay = secs
				}
			}
		}
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	if delay >= grace {
		add("preStop delay %ds is not shorter than the grace period %ds", delay, grace)
	}

	// Disruption budget that protects without blocking drains.
	pdbs := All[*policyv1.PodDisruptionBudget](r)
	if len(pdbs) != 1 {
		add("want one PodDisruptionBudget, got %d", len(pdbs))
	} else {
		p := pdbs[0].Spec
		switch {
		case p.MaxUnavailable != nil && scaled(p.MaxUnavailable, replicas, true) < 1:
			add("PDB maxUnavailable %s allows no eviction", p.MaxUnavailable.String())
		case p.MinAvailable != nil && scaled(p.MinAvailable, replicas, true) >= replicas:
			add("PDB minAvailable %s allows no eviction with %d replicas", p.MinAvailable.String(), replicas)
		case p.MaxUnavailable == nil && p.MinAvailable == nil:
			add("PDB sets neither minAvailable nor maxUnavailable")
		}
		wantPolicy := atLeast(kubeVersion, "1.31.0")
		if wantPolicy && (p.UnhealthyPodEvictionPolicy == nil || *p.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow) {
			add("PDB unhealthyPodEvictionPolicy is not AlwaysAllow on Kubernetes %s", kubeVersion)
		}
		if !wantPolicy && p.UnhealthyPodEvictionPolicy != nil {
			add("PDB unhealthyPodEvictionPolicy set on Kubernetes %s (GA in 1.31)", kubeVersion)
		}
		if !equalMaps(p.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
			add("PDB selector %v differs from the Deployment selector %v", p.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
		}
	}

	// Spread across nodes.
	spread := false
	for _, t := range pod.TopologySpreadConstraints {
		if t.TopologyKey == corev1.LabelHostname && t.LabelSelector != nil {
			spread = true
		}
	}
	if !spread && pod.Affinity == nil {
		add("pods are not spread across nodes")
	}
	return v
}

// scaled resolves an int-or-percent against a replica count, as the Deployment and disruption controllers
// do (roundUp for surge and PDB values, round down for maxUnavailable).
func scaled(v *intstr.IntOrString, replicas int32, roundUp bool) int32 {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(replicas), roundUp)
	if err != nil {
		return -1
	}
	return int32(n)
}

// envDuration returns the whole seconds of a duration-valued environment variable, -1 if absent or invalid.
func envDuration(c corev1.Container, name string) int64 {
	for _, e := range c.Env {
		if e.Name == name {
			d, err := time.ParseDuration(e.Value)
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

// atLeast reports whether kubeVersion >= min.
func atLeast(kubeVersion, min string) bool {
	return version.MustParseGeneric(kubeVersion).AtLeast(version.MustParseGeneric(min))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
