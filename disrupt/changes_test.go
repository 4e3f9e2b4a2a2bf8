package disrupt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/go-service/go-service/gate"
)

// pods builds a workload's pods from "name:hash" pairs; the UID is the name.
func podsOf(specs ...string) gate.Pods {
	out := gate.Pods{}
	for _, s := range specs {
		name, hash, _ := strings.Cut(s, ":")
		out["uid-"+name] = gate.Pod{Name: name, Hash: hash}
	}
	return out
}

// Every kind of change is checked against what it must have done, and each check fails on the input
// that breaks it: a scale that never happens, a bad release that becomes ready, a helm test pod that is
// an endpoint, a change that keeps the scale and does not.
func TestChangeCheck(t *testing.T) {
	four, two := podsOf("a1:a", "a2:a", "a3:a", "a4:a"), podsOf("a1:a", "a2:a")
	three := podsOf("a1:a", "a2:a", "a3:a")
	scale := Change{Kind: KindScale, What: "scale 4 to 2", Replicas: 2, Spec: 2, Ready: 2, MinReady: 2, Replacement: gate.Replacement{Before: four, After: two}}
	bad := Change{Kind: KindBadRelease, What: "bad release", NewPods: []string{"b1"}, ReadyListed: []string{"a1", "a2", "a3"}, MinReady: 3,
		Replacement: gate.Replacement{Before: three, After: three}}
	test := Change{Kind: KindHelmTest, What: "helm test", Pod: "svc-test-connection", PodPhase: "Succeeded", Listed: []string{"a1", "a2"}, MinReady: 2,
		Replacement: gate.Replacement{Before: two, After: two}}
	held := Change{Kind: KindScaleHeld, What: "autoscaling on", Replicas: 4, MinReady: 4, Replacement: gate.Replacement{Before: four, After: four}}
	with := func(c Change, f func(*Change)) Change { f(&c); return c }
	for _, tc := range []struct {
		name   string
		change Change
		want   []string // substrings of the violations, in order; none for a change that did what it must
	}{
		{"a scale down that happened", scale, nil},
		{"a scale up that happened", with(scale, func(c *Change) {
			c.What, c.Replicas, c.Spec, c.Ready, c.Replacement = "scale 2 to 4", 4, 4, 4, gate.Replacement{Before: two, After: four}
		}), nil},
		{"a scale that never happens", with(scale, func(c *Change) { c.Spec, c.Ready, c.Replacement.After = 4, 4, four }),
			[]string{"reality: scale 4 to 2: 2 replicas wanted: the Deployment asks for 4, 4 pods run, 4 ready endpoints"}},
		{"a chart that ignored the count: the Deployment keeps its own", with(scale, func(c *Change) { c.Spec = 4 }),
			[]string{"2 replicas wanted: the Deployment asks for 4, 2 pods run, 2 ready endpoints"}},
		{"a removed pod still terminating", with(scale, func(c *Change) { c.Remaining = []string{"a3"} }), []string{"removed pods still exist: a3"}},
		{"a scale that replaced a pod", with(scale, func(c *Change) { c.Replacement.After = podsOf("a1:a", "x9:a") }),
			[]string{"pod x9 was replaced"}},
		{"a scale down that went below its target", with(scale, func(c *Change) { c.MinReady = 1 }), []string{"ready endpoints fell to 1 during the change, below 2"}},
		{"a scale whose endpoints were never seen", with(scale, func(c *Change) { c.MinReady = -1 }), []string{"ready endpoints were never observed"}},
		{"a scale with no target", with(scale, func(c *Change) { c.Replicas = 0 }), []string{"no replica count to reach was declared"}},

		{"a bad release rolled back", bad, nil},
		{"a bad release that becomes ready", with(bad, func(c *Change) { c.ReadyListed = append(c.ReadyListed, "b1") }),
			[]string{"pod b1 of the bad release became a ready endpoint"}},
		{"a bad release that created no pod", with(bad, func(c *Change) { c.NewPods = nil }), []string{"the release created no pod"}},
		{"a bad release that replaced an old pod", with(bad, func(c *Change) { c.Replacement.After = podsOf("a1:a", "a2:a", "b1:b") }),
			[]string{"pod a3 is gone", "pod b1 is new"}},
		{"a rollback that did not restore the template", with(bad, func(c *Change) {
			c.Replacement.After = gate.Pods{"uid-a1": {Name: "a1", Hash: "b"}, "uid-a2": {Name: "a2", Hash: "a"}, "uid-a3": {Name: "a3", Hash: "a"}}
		}), []string{"pod a1 runs template b, a before"}},
		{"old pods that stopped serving", with(bad, func(c *Change) { c.MinReady = 2 }), []string{"fell to 2 during the change, below 3"}},
		{"old pods that stopped serving, and which", with(bad, func(c *Change) { c.MinReady = 2; c.NotReady = []string{"a2 at 18:33:40.120"} }),
			[]string{"fell to 2 during the change, below 3; pods of before the change not ready meanwhile: a2 at 18:33:40.120"}},

		{"a helm test that passed off the endpoints", test, nil},
		{"a helm test pod that is an endpoint", with(test, func(c *Change) { c.Listed = append(c.Listed, "svc-test-connection") }),
			[]string{"the test pod svc-test-connection was listed as an endpoint"}},
		{"a helm test that failed", with(test, func(c *Change) { c.PodPhase = "Failed" }), []string{`did not succeed (last phase seen: "Failed")`}},
		{"a helm test never seen ending", with(test, func(c *Change) { c.PodPhase = "" }), []string{`did not succeed (last phase seen: "")`}},
		{"a helm test that restarted the release's pods", with(test, func(c *Change) { c.Replacement.After = podsOf("a1:a", "a9:a") }),
			[]string{"pod a2 is gone", "pod a9 is new"}},

		{"autoscaling on, the scale kept", held, nil},
		{"autoscaling on, the scale dropped to minReplicas", with(held, func(c *Change) { c.MinReady = 2 }), []string{"fell to 2 during the change, below 4"}},
		{"autoscaling on, nothing observed", with(held, func(c *Change) { c.MinReady = -1 }), []string{"never observed"}},
		{"autoscaling on, no count before", with(held, func(c *Change) { c.Replicas = 0 }), []string{"no ready endpoint count before the change"}},

		{"a baseline", baseline, nil},
		{"a baseline in which a pod was replaced", with(baseline, func(c *Change) { c.Replacement.After = podsOf("api-a-1:a", "api-a-9:a") }),
			[]string{"pod api-a-2 is gone", "pod api-a-9 is new"}},
		{"a baseline with no pod", with(baseline, func(c *Change) { c.Replacement = gate.Replacement{} }), []string{"no pod before the change"}},

		{"a change of no kind", Change{What: "something"}, []string{`unknown kind ""`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.change.Check()
			require.Len(t, errs, len(tc.want), "%v", errs)
			var got []string
			for _, err := range errs {
				var v *gate.Violation
				require.ErrorAs(t, err, &v)
				assert.Equal(t, gate.Reality, v.Gate)
				got = append(got, err.Error())
			}
			// map order: compare as a set of substrings
			for _, w := range tc.want {
				assert.True(t, strings.Contains(strings.Join(got, "\n"), w), "want %q in %v", w, got)
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	c := Change{Kind: KindScale, What: "scale 4 to 2", Replicas: 2, Spec: 2, Ready: 2, MinReady: 2,
		Replacement: gate.Replacement{Before: podsOf("a1:a", "a2:a", "a3:a", "a4:a"), After: podsOf("a1:a", "a2:a")}}
	assert.Equal(t, "scale 4 to 2 (scale): 4 pods before, 2 after; 2 wanted: the Deployment asked for 2, 2 ready endpoints; fewest ready endpoints during it: 2", c.String())
}

// A run that declared no change fails, whatever it marked; a pod that must never serve (a bad
// release's, a helm test's) fails every client it answered.
func TestEvaluateDeclaredChanges(t *testing.T) {
	t.Run("marks alone", func(t *testing.T) {
		r := run(0)
		r.Changes = nil
		cluster := Evaluate([]*Run{r}, ZeroFailures, gate.Policy{})
		require.Len(t, cluster, 1)
		assert.Contains(t, cluster[0].Error(), "no change was declared")
		assert.False(t, r.Passed)
	})
	for _, tc := range []struct {
		name   string
		change Change
		want   string
	}{
		{"a bad release's pod answered", Change{Kind: KindBadRelease, What: "bad release", NewPods: []string{"api-b-1"}, MinReady: 2,
			Replacement: baseline.Replacement}, "bad release: pod api-b-1 answered 10 request(s): it must never serve"},
		{"the helm test pod answered", Change{Kind: KindHelmTest, What: "helm test", Pod: "api-b-1", PodPhase: "Succeeded", MinReady: 2,
			Replacement: baseline.Replacement}, "helm test: pod api-b-1 answered 10 request(s): it must never serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(0)
			r.Changes = []Change{tc.change}
			r.Load.BackendNames = []string{"pod=api-a-1", "pod=api-b-1"}
			for i := range r.Load.Requests {
				if i >= 1000 && i < 1010 {
					r.Load.Requests[i].Backend = 1
				}
			}
			assert.Empty(t, Evaluate([]*Run{r}, ZeroFailures, gate.Policy{}))
			assert.False(t, r.Passed)
			assert.Contains(t, strings.Join(r.Violations, "\n"), tc.want)

			clean := run(0)
			clean.Changes = []Change{tc.change}
			clean.Load.BackendNames = []string{"pod=api-a-1"}
			Evaluate([]*Run{clean}, ZeroFailures, gate.Policy{})
			assert.True(t, clean.Passed, "%v", clean.Violations)
		})
	}
}

// A rollout of a Deployment an HPA scales ends with the HPA's count; any other with the count before.
func TestAutoscaled(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "api"}}}
	for _, tc := range []struct {
		deployment string
		want       bool
	}{{"api", true}, {"worker", false}} {
		tr := &Traffic{client: fake.NewClientset(hpa), ns: "shop", target: Target{Deployment: tc.deployment}}
		assert.Equal(t, tc.want, tr.autoscaled(t), tc.deployment)
	}
}
