// Package tcptrace reads the kernel's own account of TCP handshakes (tracefs: the tcp_retransmit_skb
// and tcp_send_reset tracepoints, and kfree_skb's PAWS drops) while load runs, so that a connection
// whose SYN was retransmitted can be told why: answered by an older connection of the same four
// addresses and ports (a TIME_WAIT that refused it for PAWS, RFC 7323), or lost without an answer.
//
// A host client's connections to a Service are masqueraded by kube-proxy (MASQUERADE --random-fully)
// to the node's address on the pod's network, the address the kubelet's probes come from too. When
// the random port picked for a new connection is that of a connection still in TIME_WAIT at the pod
// (one the pod closed first), the pod's TCP may drop the SYN for PAWS and answer with an ACK of the old
// connection; the client resets it and sends its SYN again (kubernetes/kubernetes
// #90854 and #76699). Mostly the second SYN gets through within milliseconds; when it meets the same
// TIME_WAIT, TCP's 1 s retransmission timeout follows.
package tcptrace

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TimeWaitPAWS is the drop reason (include/net/dropreason-core.h) of a segment, here a SYN, that met a
// TIME_WAIT socket and failed its timestamp check (PAWS).
const TimeWaitPAWS = "TCP_RFC7323_TW_PAWS"

// InvalidACK is the reset reason (include/net/rstreason.h) of a socket that got an ACK acknowledging
// nothing it sent; for a socket sending its SYN, the answer of an older connection of the same
// addresses and ports.
const InvalidACK = "TCP_INVALID_ACK_SEQUENCE"

// Kinds of events.
const (
	// Retransmit: a socket in SYN_SENT sent its SYN again.
	Retransmit = "SYN retransmitted"
	// Reset: a socket in SYN_SENT reset the connection an ACK came from (reason InvalidACK).
	Reset = "reset an older connection's ACK"
	// PAWS: a TIME_WAIT dropped a SYN for PAWS (TimeWaitPAWS); the event names no addresses.
	PAWS = TimeWaitPAWS
)

// Event is one thing the kernel reported.
type Event struct {
	At time.Time
	// Kind is Retransmit, Reset or PAWS.
	Kind string
	// Local and Remote are the socket's addresses (host:port, before any NAT) for Retransmit and Reset.
	Local, Remote string
}

// Watcher records the events while it runs. Its methods are safe for concurrent use.
type Watcher struct {
	dir     string // the tracefs instance
	unmount string // tracefs mount point to unmount at Close ("" if it was mounted already)
	fd      int
	offset  time.Duration // wall clock minus CLOCK_MONOTONIC (the instance's trace_clock)
	stop    chan struct{}
	done    chan struct{}
	flush   chan chan struct{}
	once    sync.Once

	mu     sync.Mutex
	events []Event
	err    error // why reading stopped early
}

// maxEvents bounds the memory a long run can take; events past it are counted as lost.
const maxEvents = 1 << 18

// Start creates a tracefs instance of its own (named for this process) and records SYN
// retransmissions and the drops above until Close. It needs root and a kernel with these tracepoints
// and drop reasons (Linux 6.10 or later); the error says what is missing.
func Start() (*Watcher, error) {
	root, unmount, err := tracefs()
	if err != nil {
		return nil, err
	}
	w := &Watcher{dir: filepath.Join(root, "instances", fmt.Sprintf("go-service-%d", os.Getpid())), unmount: unmount, fd: -1, stop: make(chan struct{}), done: make(chan struct{}), flush: make(chan chan struct{})}
	fail := func(err error) (*Watcher, error) {
		w.remove()
		return nil, err
	}
	if err := os.Mkdir(w.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fail(fmt.Errorf("tcptrace: %w", err))
	}
	drop, err := reasonNumber(w.dir, "skb/kfree_skb", TimeWaitPAWS)
	if err != nil {
		return fail(err)
	}
	rst, err := reasonNumber(w.dir, "tcp/tcp_send_reset", InvalidACK)
	if err != nil {
		return fail(err)
	}
	steps := []struct{ file, value string }{
		{"trace_clock", "mono"},
		{"buffer_size_kb", "2048"},
		{"events/tcp/tcp_retransmit_skb/filter", "state == 2"}, // TCP_SYN_SENT
		{"events/tcp/tcp_send_reset/filter", fmt.Sprintf("state == 2 && reason == %d", rst)},
		{"events/skb/kfree_skb/filter", fmt.Sprintf("reason == %d", drop)},
		{"events/tcp/tcp_retransmit_skb/enable", "1"},
		{"events/tcp/tcp_send_reset/enable", "1"},
		{"events/skb/kfree_skb/enable", "1"},
		{"tracing_on", "1"},
	}
	for _, s := range steps {
		if err := os.WriteFile(filepath.Join(w.dir, s.file), []byte(s.value), 0); err != nil {
			return fail(fmt.Errorf("tcptrace: write %q to %s: %w", s.value, s.file, err))
		}
	}
	w.fd, err = unix.Open(filepath.Join(w.dir, "trace_pipe"), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("tcptrace: open trace_pipe: %w", err))
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fail(fmt.Errorf("tcptrace: %w", err))
	}
	w.offset = clockOffset(0)
	go w.read()
	return w, nil
}

// tracefs returns where tracefs is mounted, mounting it at /sys/kernel/tracing if it is nowhere (and
// then returning that path as the one to unmount).
func tracefs() (root, unmount string, err error) {
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(p, "instances")); err == nil {
			return p, "", nil
		}
	}
	const p = "/sys/kernel/tracing"
	if err := unix.Mount("nodev", p, "tracefs", 0, ""); err != nil {
		return "", "", fmt.Errorf("tcptrace: mount tracefs at %s: %w", p, err)
	}
	return p, p, nil
}

// reasonNumber finds a reason's number in a tracepoint's format (the numbers differ between kernels).
func reasonNumber(dir, event, name string) (int, error) {
	format, err := os.ReadFile(filepath.Join(dir, "events", event, "format"))
	if err != nil {
		return 0, fmt.Errorf("tcptrace: the %s tracepoint: %w", event, err)
	}
	return reasonIn(format, event, name)
}

func reasonIn(format []byte, event, name string) (int, error) {
	m := regexp.MustCompile(`\{ (\d+), "` + regexp.QuoteMeta(name) + `" \}`).FindSubmatch(format)
	if m == nil {
		return 0, fmt.Errorf("tcptrace: this kernel's %s has no reason %s", event, name)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, nil
}

func (w *Watcher) read() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	var partial []byte
	var waiting []chan struct{} // Flush calls answered once the pipe has nothing more
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, err := unix.Read(w.fd, buf)
		switch {
		case n > 0:
			offset := clockOffset(w.offset)
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				w.line(string(partial[:i]), offset)
				partial = partial[i+1:]
			}
			continue
		case err == nil, errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			w.fail(fmt.Errorf("tcptrace: read trace_pipe: %w", err))
			for _, c := range waiting {
				close(c)
			}
			return
		}
		for _, c := range waiting {
			close(c)
		}
		waiting = waiting[:0]
		select {
		case <-w.stop:
			return
		case c := <-w.flush:
			waiting = append(waiting, c)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// line records one line of trace_pipe: an event, or the pipe's word that events were lost.
func (w *Watcher) line(l string, offset time.Duration) {
	if strings.Contains(l, "[LOST ") { // trace_pipe's own word that the buffer overflowed
		w.fail(fmt.Errorf("tcptrace: the kernel's buffer overflowed, events were lost: %s", strings.TrimSpace(l)))
		return
	}
	if e, ok := parse(l, offset); ok {
		w.add(e)
	}
}

// clockOffset is the wall clock minus CLOCK_MONOTONIC now (last if it cannot be read), so a step of
// the wall clock during a long run does not shift the events.
func clockOffset(last time.Duration) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return last
	}
	return time.Duration(time.Now().UnixNano() - ts.Nano())
}

// Flush returns once the watcher has read what the kernel had reported when it was called.
func (w *Watcher) Flush() {
	c := make(chan struct{})
	select {
	case w.flush <- c:
		select {
		case <-c:
		case <-w.done:
		}
	case <-w.done:
	}
}

func (w *Watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *Watcher) add(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) >= maxEvents {
		if w.err == nil {
			w.err = fmt.Errorf("tcptrace: more than %d events; later ones were not kept", maxEvents)
		}
		return
	}
	w.events = append(w.events, e)
}

var line = regexp.MustCompile(`\s(\d+)\.(\d+): (tcp_retransmit_skb|tcp_send_reset|kfree_skb): (.*)$`)

// parse reads one line of trace_pipe; offset turns its CLOCK_MONOTONIC time into wall time.
func parse(s string, offset time.Duration) (Event, bool) {
	m := line.FindStringSubmatch(s)
	if m == nil {
		return Event{}, false
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	frac := (m[2] + "000000000")[:9]
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	e := Event{At: time.Unix(0, sec*int64(time.Second)+nsec).Add(offset)}
	fields := map[string]string{}
	rest := m[4]
	if i := strings.Index(rest, " reason: "); i >= 0 { // kfree_skb's
		fields["reason"] = strings.TrimSpace(rest[i+len(" reason: "):])
		rest = rest[:i]
	}
	for _, f := range strings.Fields(rest) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	switch m[3] {
	case "tcp_retransmit_skb":
		if fields["state"] != "TCP_SYN_SENT" || (fields["err"] != "" && fields["err"] != "0") { // err: not sent
			return Event{}, false
		}
		if fields["family"] != "AF_INET" || fields["sport"] == "" || fields["dport"] == "" {
			return Event{}, false
		}
		e.Kind = Retransmit
		e.Local = net.JoinHostPort(fields["saddr"], fields["sport"])
		e.Remote = net.JoinHostPort(fields["daddr"], fields["dport"])
	case "tcp_send_reset":
		if fields["state"] != "TCP_SYN_SENT" || fields["reason"] != InvalidACK || fields["src"] == "" || fields["dest"] == "" {
			return Event{}, false
		}
		e.Kind, e.Local, e.Remote = Reset, fields["src"], fields["dest"]
	default:
		if fields["reason"] != TimeWaitPAWS {
			return Event{}, false
		}
		e.Kind = PAWS
	}
	return e, true
}

// Err says why the watcher stopped recording early, if it did.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Events returns the events recorded from from to to, in order.
func (w *Watcher) Events(from, to time.Time) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Event
	for _, e := range w.events {
		if !e.At.Before(from) && !e.At.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// Close stops recording and removes the tracefs instance (and the tracefs mount Start made).
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		err = w.remove()
	})
	return err
}

func (w *Watcher) remove() error {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
	var errs []error
	if _, err := os.Stat(w.dir); err == nil {
		_ = os.WriteFile(filepath.Join(w.dir, "tracing_on"), []byte("0"), 0)
		if err := os.Remove(w.dir); err != nil { // rmdir of an instance disables its events and frees it
			errs = append(errs, fmt.Errorf("tcptrace: remove %s: %w", w.dir, err))
		}
	}
	if others, _ := filepath.Glob(filepath.Join(filepath.Dir(w.dir), "*")); w.unmount != "" && len(others) == 0 { // no one else's instance
		if err := unix.Unmount(w.unmount, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("tcptrace: unmount %s: %w", w.unmount, err))
		}
		w.unmount = ""
	}
	return errors.Join(errs...)
}

// Handshake is what the kernel recorded of one connection's opening.
type Handshake struct {
	// Retransmits is how many times the kernel sent the connection's SYN again.
	Retransmits int `json:"retransmits"`
	// OldAnswers is how many of those retransmissions followed, since the SYN before, a reset the
	// connection's socket sent to an ACK of an older connection of the same addresses and ports
	// (InvalidACK): an answer, not a loss.
	OldAnswers int `json:"oldAnswers"`
	// PAWS is how many of those answers came right after (PAWSLead) a TIME_WAIT on this machine dropped
	// a SYN for PAWS, since the SYN before: the TIME_WAIT that answered.
	PAWS int `json:"paws"`
	// Waited is how long after the connection's start its last SYN went (0: none went again): the time
	// its SYNs took to be answered, up to the SYN that was.
	Waited time.Duration `json:"waited"`
}

// PAWSLead is how long before a reset the TIME_WAIT's PAWS drop must be for the two to be one exchange
// (the TIME_WAIT drops the SYN and answers at once; the answer crosses no wire).
const PAWSLead = 5 * time.Millisecond

// Explain finds, among events, the handshake of the connection from local to remote (host:port, as
// the client's socket saw them) opened from from to to: its SYN retransmissions, and for each whether
// the socket reset an older connection's answer after the SYN before it, right after a TIME_WAIT's
// PAWS drop. Only one socket can hold the four addresses and ports at a time.
func Explain(events []Event, local, remote string, from, to time.Time) Handshake {
	var h Handshake
	var sorted []Event
	for _, e := range events {
		if !e.At.Before(from) && !e.At.After(to) {
			sorted = append(sorted, e)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At.Before(sorted[j].At) })
	mine := func(e Event) bool { return e.Local == local && e.Remote == remote }
	prev := from
	for _, r := range sorted {
		if r.Kind != Retransmit || !mine(r) {
			continue
		}
		h.Retransmits++
		for _, a := range sorted {
			if a.Kind != Reset || !mine(a) || !a.At.After(prev) || a.At.After(r.At) {
				continue
			}
			h.OldAnswers++
			for _, d := range sorted {
				if d.Kind == PAWS && d.At.After(prev) && !d.At.After(a.At) && a.At.Sub(d.At) <= PAWSLead {
					h.PAWS++
					break
				}
			}
			break
		}
		prev = r.At
		h.Waited = r.At.Sub(from)
	}
	return h
}

// Collided says whether every SYN the connection sent again followed a TIME_WAIT's answer: a PAWS
// drop and, right after it, the socket's reset of an older connection's ACK. None was lost.
func (h Handshake) Collided() bool {
	return h.Retransmits > 0 && h.OldAnswers == h.Retransmits && h.PAWS == h.Retransmits
}

func (h Handshake) String() string {
	switch {
	case h.Retransmits == 0:
		return "the kernel recorded no retransmission of its SYN"
	case h.Collided():
		return fmt.Sprintf("the kernel sent its SYN again %d time(s), each after a TIME_WAIT of an older connection of the same addresses and ports had dropped the SYN before for PAWS (%s) and answered with an ACK the socket reset (%s): kube-proxy's SNAT (--random-fully) picked the port of a connection the pod still held in TIME_WAIT (the pod holds those it closed first)",
			h.Retransmits, TimeWaitPAWS, InvalidACK)
	}
	return fmt.Sprintf("the kernel sent its SYN again %d time(s): %d after an older connection's answer (%s), %d of those right after a TIME_WAIT's PAWS drop; the rest were lost with no answer", h.Retransmits, h.OldAnswers, InvalidACK, h.PAWS)
}
