// Package gate decides whether a load run proves anything. A zero-downtime claim holds only when the
// load really covered the disruption (coverage), the disruption really happened (reality: the pods were
// replaced and the clients saw old and new ones answer), no request failed or stalled (failures,
// latency), and a negative control failed inside its disruption, in the ways it should (sensitivity).
//
// Each check returns the violations it found, as *Violation values callers can inspect with errors.As;
// nil means the run passed it.
package gate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-service/go-service/load"
)

// Gate names.
const (
	Coverage    = "coverage"
	Failures    = "failures"
	Latency     = "latency"
	Sensitivity = "sensitivity"
	Reality     = "reality"
)

// Violation is one broken gate.
type Violation struct {
	Gate   string // one of the gate names
	Client string // the load client's name ("" when the gate is about the cluster)
	Detail string
}

func (v *Violation) Error() string {
	if v.Client == "" {
		return v.Gate + ": " + v.Detail
	}
	return fmt.Sprintf("%s (%s): %s", v.Gate, v.Client, v.Detail)
}

// Policy is what a gated run must meet.
type Policy struct {
	// MinCoverage is the share of rate x duration a client must have sent (default 0.95).
	MinCoverage float64
	// SteadyBefore is the steady load every client must have run before the disruption (default 3s).
	SteadyBefore time.Duration
	// SettleAfter is how long every client must keep running after the disruption ends: kube-proxy's
	// minSyncPeriod + 1 s, so late endpoint changes are still under load (default 2s).
	SettleAfter time.Duration
	// SlowAfter is the latency above which a successful request fails the latency gate (default 1s).
	SlowAfter time.Duration
	// MinEvidence and MinEvidenceShare are a negative control's least evidence: failures of the expected
	// kinds inside the disruption, at least MinEvidence (default 10) and MinEvidenceShare (default 0.01)
	// of the requests sent inside it.
	MinEvidence      int
	MinEvidenceShare float64
	// MinInsideShare is the share of a negative control's failures that must fall inside the disruption
	// (default 0.9).
	MinInsideShare float64
	// MinPerSecond is the share of the rate every whole second from the disruption's start to SettleAfter
	// past its end must have sent (default 0.8): a client that stalls through the disruption and catches
	// up afterwards has not covered it.
	MinPerSecond float64
}

// WithDefaults returns the policy with every unset field at its default.
func (p Policy) WithDefaults() Policy {
	if p.MinCoverage == 0 {
		p.MinCoverage = 0.95
	}
	if p.SteadyBefore == 0 {
		p.SteadyBefore = 3 * time.Second
	}
	if p.SettleAfter == 0 {
		p.SettleAfter = 2 * time.Second
	}
	if p.SlowAfter == 0 {
		p.SlowAfter = time.Second
	}
	if p.MinPerSecond == 0 {
		p.MinPerSecond = 0.8
	}
	if p.MinEvidence == 0 {
		p.MinEvidence = 10
	}
	if p.MinEvidenceShare == 0 {
		p.MinEvidenceShare = 0.01
	}
	if p.MinInsideShare == 0 {
		p.MinInsideShare = 0.9
	}
	return p
}

// Window is the disruption: from its first mark to its last.
type Window struct{ From, To time.Time }

// Check is a run of one client against its disruption.
type Check struct {
	Client string
	Result *load.Result
	Window Window
}

// CheckCoverage: the client recorded every request it sent (every figure is computed from the records,
// never from a client's own totals), sent at least MinCoverage of rate x duration, started SteadyBefore
// before the disruption and ran SettleAfter past its end; and CheckStalls.
func CheckCoverage(c Check, p Policy) []error {
	return append(CheckTotals(c, p), CheckStalls(c, p)...)
}

// CheckStalls: the client sent at least MinPerSecond of its rate in every second of the disruption and
// its settle time (a stall, even if made up later, leaves those seconds uncovered).
func CheckStalls(c Check, p Policy) []error {
	p = p.WithDefaults()
	r := c.Result
	if r == nil {
		return nil
	}
	var low []string
	for _, l := range LowSeconds(c, p) {
		s := fmt.Sprintf("+%ds: %d sent", int(l.At.Sub(c.Window.From)/time.Second), l.Sent)
		if cpu, th, ok := r.CPUAt(l.At.Add(time.Second / 2)); ok {
			s += fmt.Sprintf(" (CPU pressure %d ms", cpu)
			if th > 0 {
				s += fmt.Sprintf(", throttled %d ms", th)
			}
			if b := r.BusiestAt(l.At.Add(time.Second / 2)); b != "" {
				s += "; " + b
			}
			s += ")"
		}
		low = append(low, s)
	}
	if len(low) == 0 {
		return nil
	}
	return []error{&Violation{Gate: Coverage, Client: c.Client, Detail: fmt.Sprintf("sent fewer than %.0f%% of %d/s in %d second(s) of the disruption (a stall, even if made up later, leaves them uncovered): %s",
		p.MinPerSecond*100, r.Rate, len(low), strings.Join(low, ", "))}}
}

// LowSecond is a whole second of a disruption in which a client sent too little.
type LowSecond struct {
	At   time.Time
	Sent int
}

// LowSeconds are the whole seconds of c's window and its settle time in which the client sent fewer
// than MinPerSecond of its rate, counted from its records.
func LowSeconds(c Check, p Policy) []LowSecond {
	p = p.WithDefaults()
	r := c.Result
	n := int(c.Window.To.Add(p.SettleAfter).Sub(c.Window.From) / time.Second)
	if r == nil || n <= 0 {
		return nil
	}
	counts := make([]int, n)
	for _, q := range r.Requests {
		if at := r.SentAt(q); !at.Before(c.Window.From) {
			if i := int(at.Sub(c.Window.From) / time.Second); i < n {
				counts[i]++
			}
		}
	}
	var out []LowSecond
	for i, sent := range counts {
		if float64(sent) < p.MinPerSecond*float64(r.Rate) {
			out = append(out, LowSecond{At: c.Window.From.Add(time.Duration(i) * time.Second), Sent: sent})
		}
	}
	return out
}

// CheckTotals is CheckCoverage without the per-second part (CheckStalls).
func CheckTotals(c Check, p Policy) []error {
	p = p.WithDefaults()
	r := c.Result
	var out []error
	add := func(format string, a ...any) {
		out = append(out, &Violation{Gate: Coverage, Client: c.Client, Detail: fmt.Sprintf(format, a...)})
	}
	if r == nil {
		add("no result: the client never ran")
		return out
	}
	sent := len(r.Requests)
	if sent != r.Sent {
		add("the client reports %d requests sent but recorded %d: only recorded requests count", r.Sent, sent)
	}
	ran := r.End.Sub(r.Start)
	want := p.MinCoverage * float64(r.Rate) * ran.Seconds()
	if float64(sent) < want || sent == 0 {
		add("recorded %d requests in %s at %d/s, fewer than %.0f%% of %.0f", sent, ran.Round(time.Millisecond), r.Rate, p.MinCoverage*100, float64(r.Rate)*ran.Seconds())
	}
	if c.Window.To.Before(c.Window.From) {
		add("the disruption ends (%s) before it starts (%s)", stamp(c.Window.To), stamp(c.Window.From))
	}
	if lead := c.Window.From.Sub(r.Start); lead < p.SteadyBefore {
		add("load started %s before the disruption, less than the %s of steady load required", lead.Round(time.Millisecond), p.SteadyBefore)
	}
	if tail := r.End.Sub(c.Window.To); tail < p.SettleAfter {
		add("load stopped %s after the disruption ended, less than the %s required (kube-proxy's minSyncPeriod + 1s)", tail.Round(time.Millisecond), p.SettleAfter)
	}
	return out
}

// CheckNoFailures: no recorded request failed.
func CheckNoFailures(c Check) []error {
	r := c.Result
	if r == nil {
		return nil
	}
	all := r.Window(r.Start, r.End.Add(time.Hour)) // every recorded request, those still in flight at End too
	if all.Failed == 0 {
		return nil
	}
	first := ""
	if len(r.Samples) > 0 {
		s := r.Samples[0]
		first = fmt.Sprintf("; first at %s (%s after the disruption started): %s %s; %s", stamp(s.At), s.At.Sub(c.Window.From).Round(time.Millisecond), s.Kind, s.Error, r.CPUSaid(s.At))
	}
	return []error{&Violation{Gate: Failures, Client: c.Client, Detail: fmt.Sprintf("%d of %d requests failed (%s)%s", all.Failed, all.Sent, kinds(all.ByKind), first)}}
}

// CheckLatency: no successful request took longer than SlowAfter.
func CheckLatency(c Check, p Policy) []error {
	p = p.WithDefaults()
	if c.Result == nil {
		return nil
	}
	slow := c.Result.Slower(p.SlowAfter)
	if len(slow) == 0 {
		return nil
	}
	worst := slow[0]
	for _, q := range slow {
		if q.Latency() > worst.Latency() {
			worst = q
		}
	}
	detail := fmt.Sprintf("%d request(s) slower than %s; the slowest took %s, sent at %s", len(slow), p.SlowAfter, worst.Latency().Round(time.Millisecond), stamp(c.Result.SentAt(worst)))
	if worst.Backend >= 0 && worst.Backend < len(c.Result.BackendNames) {
		detail += ", answered by " + c.Result.BackendNames[worst.Backend]
	}
	detail += handshakeOf(worst) + "; " + c.Result.CPUSaid(c.Result.SentAt(worst))
	return []error{&Violation{Gate: Latency, Client: c.Client, Detail: detail}}
}

// handshakeOf says where a slow request's time went, from what its client kept of its connection's
// opening (load.Request.ConnectMicros and SynRetransmits): a lost SYN or SYN-ACK costs TCP's 1 s
// initial retransmission timeout before the app can see the connection at all.
func handshakeOf(q load.Request) string {
	connect := q.Connect().Round(time.Millisecond)
	switch {
	case q.ConnectMicros == 0:
		return fmt.Sprintf("; its connection was reused or opened within %s: the time went after the TCP handshake", load.SlowConnect)
	case q.SynRetransmits > 0 && q.Kernel != nil:
		return fmt.Sprintf("; opening its connection (%s to %s) took %s, the kernel sent its SYN %d times (TCP_INFO): %s", q.Local, q.Remote, connect, q.SynRetransmits+1, q.Kernel)
	case q.SynRetransmits > 0:
		return fmt.Sprintf("; opening its connection took %s, the kernel sent its SYN %d times (TCP_INFO): a packet of the TCP handshake was lost before the app could see the connection (no record of the kernel's says which or why)", connect, q.SynRetransmits+1)
	case q.SynRetransmits < 0:
		return fmt.Sprintf("; opening its connection took %s (TCP_INFO could not be read)", connect)
	}
	return fmt.Sprintf("; opening its connection took %s with no SYN retransmitted", connect)
}

// CheckSensitivity is a negative control's gate: requests of an expected kind failed inside the
// disruption window; failures elsewhere are no evidence. The window runs to SettleAfter plus the
// client's timeout past the last mark: a request sent then can still meet what the disruption left
// behind (a connection to a pod that is gone, rules not yet synced).
func CheckSensitivity(c Check, p Policy, expected ...string) []error {
	p = p.WithDefaults()
	r := c.Result
	if r == nil {
		return []error{&Violation{Gate: Sensitivity, Client: c.Client, Detail: "no result"}}
	}
	in := r.Window(c.Window.From, c.Window.To.Add(p.SettleAfter+r.Timeout))
	all := r.Window(r.Start, r.End.Add(time.Hour)) // every recorded request
	var out []error
	evidence := 0
	for _, k := range expected {
		evidence += in.ByKind[k]
	}
	need := max(p.MinEvidence, int(math.Ceil(p.MinEvidenceShare*float64(in.Sent))))
	if evidence < need {
		out = append(out, &Violation{Gate: Sensitivity, Client: c.Client, Detail: fmt.Sprintf("%d request(s) failed as %s inside the disruption, fewer than the %d required (%d, or %.0f%% of the %d sent inside; failures inside: %d, %s): the test could not tell a drop from noise",
			evidence, strings.Join(expected, ", "), need, p.MinEvidence, p.MinEvidenceShare*100, in.Sent, in.Failed, kinds(in.ByKind))})
	}
	if all.Failed > 0 && float64(in.Failed) < p.MinInsideShare*float64(all.Failed) {
		out = append(out, &Violation{Gate: Sensitivity, Client: c.Client, Detail: fmt.Sprintf("%d of %d failures fell outside the disruption (extended by the settle time and the client's timeout); at most %.0f%% may: the failures are not the disruption's",
			all.Failed-in.Failed, all.Failed, (1-p.MinInsideShare)*100)})
	}
	return out
}

// Replacement is what a rollout must have done: every pod before it replaced by pods of a new template.
type Replacement struct {
	Before, After Pods
	// OldReplicaSets are the replica counts (spec, status) of the ReplicaSets of the old template hashes
	// after the rollout.
	OldReplicaSets map[string][2]int32
}

// Pods are the pods of a workload at one moment: UID to name and pod-template-hash.
type Pods map[string]Pod

// Pod is one pod.
type Pod struct{ Name, Hash string }

// CheckReplaced: the template hash changed, the old ReplicaSets are at 0, no pod survived.
func CheckReplaced(what string, r Replacement) []error {
	var out []error
	add := func(format string, a ...any) {
		out = append(out, &Violation{Gate: Reality, Detail: what + ": " + fmt.Sprintf(format, a...)})
	}
	if len(r.Before) == 0 || len(r.After) == 0 {
		add("no pods to compare (%d before, %d after)", len(r.Before), len(r.After))
		return out
	}
	oldHashes := map[string]bool{}
	for _, p := range r.Before {
		oldHashes[p.Hash] = true
	}
	for uid, p := range r.After {
		if _, ok := r.Before[uid]; ok {
			add("pod %s (uid %s) was not replaced", p.Name, uid)
		}
		if oldHashes[p.Hash] {
			add("pod %s runs the old pod-template-hash %s: the template did not change", p.Name, p.Hash)
		}
	}
	for h := range oldHashes {
		rs, ok := r.OldReplicaSets[h]
		if !ok {
			add("the ReplicaSet of the old hash %s was not found", h)
			continue
		}
		if rs[0] != 0 || rs[1] != 0 {
			add("the old ReplicaSet (hash %s) still has %d desired and %d existing replicas", h, rs[0], rs[1])
		}
	}
	return out
}

// CheckEvicted: every evicted pod is gone and the workload has as many pods as before (a drain or an
// eviction replaces pods without changing the template).
func CheckEvicted(what string, r Replacement, evicted []string) []error {
	var out []error
	add := func(format string, a ...any) {
		out = append(out, &Violation{Gate: Reality, Detail: what + ": " + fmt.Sprintf(format, a...)})
	}
	if len(evicted) == 0 {
		return []error{&Violation{Gate: Reality, Detail: what + ": no pod was evicted"}}
	}
	left := map[string]bool{}
	for _, p := range r.After {
		left[p.Name] = true
	}
	for _, name := range evicted {
		if left[name] {
			add("evicted pod %s is still running", name)
		}
	}
	if len(r.After) < len(r.Before) {
		add("%d pods after, %d before: not every evicted pod was replaced", len(r.After), len(r.Before))
	}
	return out
}

// CheckBackends: a client saw old pods (there before, gone after) and new pods (there after only)
// answer. oldSeen and newSeen are the pod names that answered (with how many responses) in the windows
// the caller holds each to: for a rollout both are the disruption; for an eviction the old pods' starts
// before it, since a fast endpoint update can take the evicted pod out of the client's picks within
// milliseconds.
func CheckBackends(c Check, before, after Pods, oldSeen, newSeen map[string]int) []error {
	old, fresh := Pods{}, Pods{}
	for uid, p := range before {
		if _, ok := after[uid]; !ok {
			old[uid] = p
		}
	}
	for uid, p := range after {
		if _, ok := before[uid]; !ok {
			fresh[uid] = p
		}
	}
	before, after = old, fresh
	seen := func(ps Pods, backends map[string]int) bool {
		for _, p := range ps {
			if backends[p.Name] > 0 {
				return true
			}
		}
		return false
	}
	var out []error
	if len(before) == 0 && len(after) == 0 {
		return []error{&Violation{Gate: Reality, Client: c.Client, Detail: fmt.Sprintf("no pod left and no pod came during the disruption: nothing was replaced; answered: %s", kinds(newSeen))}}
	}
	if !seen(before, oldSeen) {
		out = append(out, &Violation{Gate: Reality, Client: c.Client, Detail: fmt.Sprintf("no old pod (%s) answered; answered: %s", names(before), kinds(oldSeen))})
	}
	if !seen(after, newSeen) {
		out = append(out, &Violation{Gate: Reality, Client: c.Client, Detail: fmt.Sprintf("no new pod (%s) answered during the disruption; answered: %s", names(after), kinds(newSeen))})
	}
	return out
}

// Join turns violations into one error (nil for none); errors.As finds each *Violation.
func Join(vs ...[]error) error {
	var all []error
	for _, v := range vs {
		all = append(all, v...)
	}
	return errors.Join(all...)
}

func names(ps Pods) string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return strings.Join(n, ", ")
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var s []string
	for k, v := range m {
		s = append(s, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }
