package disrupt

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-service/go-service/gate"
	"github.com/go-service/go-service/load"
)

// maxControlFailures is the share of its requests a control client may lose and still vouch for the
// machine: a control that fails more than that is broken, not noisy, and excuses nothing.
const maxControlFailures = 0.10

// trouble is what went wrong for a client in one whole second (keyed by its Unix second): what a stall
// of the machine or the cluster can cause (a timeout, a slow request, too few requests sent).
type trouble map[int64]string

func (t trouble) add(at time.Time, what string) {
	if _, ok := t[at.Unix()]; !ok {
		t[at.Unix()] = what
	}
}

// seconds returns the troubled seconds in order.
func (t trouble) seconds() []int64 {
	secs := make([]int64, 0, len(t))
	for s := range t {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	return secs
}

// troubleOf is the seconds in which a client timed out, answered slowly or sent too little (inside the
// window for the last), and how many of its requests failed in a way no stall explains (refused, reset,
// EOF, an HTTP error, overload): a stall delays packets, it does not refuse or reset connections.
// For a client whose connections kube-proxy masquerades (snat: the host's), a slow request whose time
// went into a handshake in which the kernel saw every retransmitted SYN follow a TIME_WAIT's answer
// (tcptrace.Handshake.Collided: a PAWS drop, then the socket's reset of an older connection's ACK, of
// exactly as many retransmissions as TCP_INFO counted) is in collided instead, unless its time after
// its last SYN went (the time the TIME_WAITs cost it) is slow too: one fast retry after a TIME_WAIT's
// answer and then a lost SYN-ACK is a loss, not the TIME_WAIT's.
func troubleOf(r *load.Result, w gate.Window, p gate.Policy, snat bool) (t trouble, hard int, collided trouble) {
	p = p.WithDefaults()
	t, collided = trouble{}, trouble{}
	for _, q := range r.Requests {
		at := r.SentAt(q)
		switch {
		case q.Kind == load.KindTimeout:
			t.add(at, "a timeout")
		case q.Kind != "":
			hard++
		case q.Latency() > p.SlowAfter && snat && q.Kernel != nil && q.Kernel.Collided() && q.Kernel.Retransmits == q.SynRetransmits && q.Latency()-q.Kernel.Waited <= p.SlowAfter:
			collided.add(at, fmt.Sprintf("a request of %s: opening its connection took %s, %s", q.Latency().Round(time.Millisecond), q.Connect().Round(time.Millisecond), q.Kernel))
		case q.Latency() > p.SlowAfter:
			t.add(at, fmt.Sprintf("a request of %s", q.Latency().Round(time.Millisecond)))
		}
	}
	for _, l := range gate.LowSeconds(gate.Check{Result: r, Window: w}, p) {
		t.add(l.At, fmt.Sprintf("%d sent", l.Sent))
	}
	return t, hard, collided
}

// coincidence says whether a failed run's trouble was the machine's or the cluster's: every second in
// which the client timed out, answered slowly or stalled has the control client from the same place in
// trouble too, within a second, and the client failed in no way a stall cannot cause. It returns one
// line per troubled second, or why not (noise is nil then).
func coincidence(r *Run, w gate.Window, p gate.Policy) (noise []string, why string) {
	c := r.Control
	if c == nil {
		return nil, "no control client ran (Options.ControlURL unset): a stall of the machine cannot be told from a drop"
	}
	all := c.Window(c.Start, c.End.Add(time.Hour))
	if all.Sent == 0 || float64(all.Failed) > maxControlFailures*float64(all.Sent) {
		return nil, fmt.Sprintf("the control client (%s) is broken: %d of its %d requests failed (%s), more than %.0f%%: it vouches for nothing", c.Name, all.Failed, all.Sent, load.Kinds(all.ByKind), maxControlFailures*100)
	}
	mine, hard, collided := troubleOf(r.Load, w, p, strings.HasPrefix(r.Client, "host "))
	if hard > 0 {
		return nil, fmt.Sprintf("%d request(s) failed in ways a stall does not cause (refused, reset, EOF, an HTTP error): the change's", hard)
	}
	// A control's slow request that met a TIME_WAIT was no stall of the machine: it vouches for nothing.
	theirs, _, _ := troubleOf(c, w, p, true)
	for _, q := range c.Requests { // the control's hard failures are the cluster's trouble too
		if q.Kind != "" && q.Kind != load.KindTimeout {
			theirs.add(c.SentAt(q), q.Kind)
		}
	}
	for _, s := range mine.seconds() {
		at := time.Unix(s, 0)
		var match string
		for _, d := range []int64{0, -1, 1} {
			if m, ok := theirs[s+d]; ok {
				match = m
				break
			}
		}
		if match == "" {
			return nil, fmt.Sprintf("at %s the client had %s while the control client (%s, a Service nothing disrupts) had no trouble within a second: the change's", stamp(at), mine[s], c.Name)
		}
		noise = append(noise, fmt.Sprintf("at %s: %s, the control %s; %s", stamp(at), mine[s], match, r.Load.CPUSaid(at.Add(500*time.Millisecond))))
	}
	for _, s := range collided.seconds() { // the kernel vouches for these: no control needed
		if _, ok := mine[s]; !ok {
			noise = append(noise, fmt.Sprintf("at %s: %s", stamp(time.Unix(s, 0)), collided[s]))
		}
	}
	if len(noise) == 0 {
		return nil, "the failures fall in no second the control client can vouch for"
	}
	return noise, ""
}

// timingOnly says whether every violation is one a stall can cause: a failure, a slow request, or a
// stalled second; a reality violation, or a shortfall of the run as a whole, never is.
func timingOnly(errs []error, stalls map[error]bool) bool {
	for _, err := range errs {
		var v *gate.Violation
		if !errors.As(err, &v) {
			return false
		}
		switch {
		case v.Gate == gate.Failures, v.Gate == gate.Latency, stalls[err]:
		default:
			return false
		}
	}
	return true
}

func stamp(t time.Time) string { return t.Format("15:04:05") }

// controlSummary describes the control client's run in a line.
func controlSummary(c *load.Result) string {
	all := c.Window(c.Start, c.End.Add(time.Hour))
	s := fmt.Sprintf("%d requests, %d failed", all.Sent, all.Failed)
	if all.Failed > 0 {
		s += " (" + load.Kinds(all.ByKind) + ")"
	}
	return s
}
