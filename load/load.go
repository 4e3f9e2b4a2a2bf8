// Package load is an open-loop HTTP load generator for zero-downtime checks: it sends requests at a
// constant rate whatever the responses do, classifies every failure (refused, reset, EOF, timeout, 5xx,
// other), and keeps every request (when it was sent, its latency, its outcome and the backend that
// answered), so a rollout's effect can be read second by second and gated on a window. Clients come in
// the kinds callers of a Go service have: a new connection per request, a keep-alive connection pool
// sending POSTs that nobody retries, and gRPC unary calls multiplexed on long-lived HTTP/2 connections.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-service/go-service/tcptrace"
)

// Config of a run.
type Config struct {
	// Name identifies the client in reports ("host GET new-conn").
	Name     string        `json:"name,omitempty"`
	URL      string        `json:"url"`
	Rate     int           `json:"rate"`               // requests per second
	Duration time.Duration `json:"duration,omitempty"` // 0: until the context is cancelled
	// KeepAlive reuses connections from a pool, as ingress controllers, meshes and Go clients do.
	// Without it, every request opens a connection of its own and the client closes it after the answer
	// (as curl does), or, with AskClose, asks the server to ("Connection: close", as Go's clients with
	// keep-alives off do), so that the server closes first.
	KeepAlive bool `json:"keepAlive"`
	AskClose  bool `json:"askClose,omitempty"`
	// Method is GET (default) or POST. A POST carries a body and is never retried: net/http retries a
	// request on a reused connection only when it is idempotent or its body can be rewound, and a POST
	// here is neither, so a dropped keep-alive POST is seen as the failure it is.
	Method  string        `json:"method,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"` // per request, counted as a failure (default 2s)
	// MaxInFlight bounds concurrent requests (default 4 x Rate); a request that cannot start is counted
	// as a failure of kind "overload", never silently skipped.
	MaxInFlight int `json:"maxInFlight,omitempty"`
	// StartAt is when the first request is sent and the run's Start (default: at once). Clients given
	// the same StartAt start together, and a caller knows when they did without waiting on them.
	StartAt time.Time `json:"startAt,omitzero"`
	// GRPC, when set, makes the client a gRPC one: it calls the reference service's WhoamiMethod on URL,
	// a gRPC target (host:port, or dns:///name:port), over one grpc.ClientConn with this balancing
	// policy (GRPCPickFirst or GRPCRoundRobin). Method and KeepAlive do not apply: gRPC's connections
	// are long-lived by design.
	GRPC string `json:"grpc,omitempty"`
	// GRPCRequest is the gRPC calls' request (e.g. "sleep=500ms", which the reference service honours,
	// so calls are always in flight on the connection).
	GRPCRequest string `json:"grpcRequest,omitempty"`
	// Control marks a control client: it sends to a Service nothing disrupts, from the same place as
	// the clients under test, so that a stall of the machine or the cluster shows in it too.
	Control bool `json:"control,omitempty"`
	// Processes makes the client sample, once a second, which processes of the machine used the most
	// CPU (Result.Busiest), so that a stall names what ran then. It reads every process in /proc: one
	// client of the host's is enough, and a pod sees only its own.
	Processes bool `json:"processes,omitempty"`
}

// DefaultTimeout is the per-request timeout: a request that takes longer has failed.
const DefaultTimeout = 2 * time.Second

// Failure kinds.
const (
	KindRefused  = "refused"
	KindReset    = "reset"
	KindEOF      = "eof"
	KindTimeout  = "timeout"
	Kind5xx      = "5xx"
	KindOther    = "other"
	KindOverload = "overload"
)

// Second is one second of a run.
type Second struct {
	T        int            `json:"t"` // seconds since the start
	OK       int            `json:"ok"`
	Failed   map[string]int `json:"failed,omitempty"`
	P50Milli float64        `json:"p50ms"`
	P99Milli float64        `json:"p99ms"`
	MaxMilli float64        `json:"maxms"`
}

// FailureSample is one failed request.
type FailureSample struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Error string    `json:"error"`
}

// Request is one request of a run: when it was sent (microseconds after the run's start), how long it
// took, how it failed ("" = success) and which backend answered (an index into Result.BackendNames,
// -1 for none). Every request is kept, so a run decoded from JSON (an in-cluster client) can be
// gated exactly like one run in this process.
type Request struct {
	SentMicros    int64  `json:"t"`
	LatencyMicros int64  `json:"l"`
	Kind          string `json:"k,omitempty"`
	Backend       int    `json:"b"`
	// ConnectMicros and SynRetransmits are kept for a request that opened a connection slower than
	// SlowConnect: how long the connect took, and how many times the kernel retransmitted its SYN
	// (-1 where TCP_INFO cannot be read). A lost SYN or SYN-ACK costs TCP's 1 s retransmission timeout.
	ConnectMicros  int64 `json:"c,omitempty"`
	SynRetransmits int   `json:"s,omitempty"`
	// Local and Remote are that connection's addresses (host:port, as its socket saw them), and Kernel
	// what the kernel recorded of its opening (filled in by a process that watched it, tcptrace; nil
	// when nothing did).
	Local  string              `json:"la,omitempty"`
	Remote string              `json:"ra,omitempty"`
	Kernel *tcptrace.Handshake `json:"kernel,omitempty"`
}

// WithQuery returns url with the query string q appended (url itself when q is empty).
func WithQuery(url, q string) string {
	if q == "" {
		return url
	}
	return url + "?" + q
}

// Result of a run.
type Result struct {
	Config
	Start   time.Time       `json:"start"`
	End     time.Time       `json:"end"` // when sending stopped (requests in flight then completed after)
	Sent    int             `json:"sent"`
	OK      int             `json:"ok"`
	Failed  int             `json:"failed"`
	ByKind  map[string]int  `json:"byKind"`
	Seconds []Second        `json:"seconds"`
	Samples []FailureSample `json:"failureSamples"`
	// Backends counts responses per answering backend (the body's first line).
	Backends     map[string]int `json:"backends"`
	BackendNames []string       `json:"backendNames"`
	Requests     []Request      `json:"requests"`
	// CPUPressure is, for each second from Start, how many milliseconds some task on the machine waited
	// for a CPU (/proc/pressure/cpu), and Throttled how many the client's own cgroup was held back by
	// its CPU limit; -1 where they could not be read. A stall that hits every client at once shows here.
	CPUPressure []int32 `json:"cpuPressure,omitempty"`
	Throttled   []int32 `json:"throttled,omitempty"`
	// Busiest is, for each second from Start, the processes that used the most CPU on the machine,
	// named as procName names them (sampled with Config.Processes only).
	Busiest [][]ProcCPU `json:"busiest,omitempty"`
}

// Run sends requests until the duration passes or ctx is cancelled, then waits for the requests in
// flight.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Rate <= 0 || cfg.URL == "" {
		return nil, errors.New("load: URL and a positive Rate are required")
	}
	switch {
	case cfg.GRPC != "" && (cfg.Method != "" || cfg.KeepAlive || cfg.AskClose):
		return nil, fmt.Errorf("load: a gRPC client (GRPC %q) takes no Method, KeepAlive nor AskClose", cfg.GRPC)
	case cfg.KeepAlive && cfg.AskClose:
		return nil, errors.New("load: KeepAlive and AskClose: a client that asks the server to close every connection keeps none alive")
	case cfg.GRPC != "":
	case cfg.Method == "":
		cfg.Method = http.MethodGet
	case cfg.Method != http.MethodGet && cfg.Method != http.MethodPost:
		return nil, fmt.Errorf("load: Method %q: want GET or POST", cfg.Method)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 4 * cfg.Rate
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var send func() outcome
	if cfg.GRPC != "" {
		conn, err := newGRPCConn(cfg)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		send = func() outcome { return doGRPC(conn, cfg) }
	} else {
		dial := dialRecording(&net.Dialer{Timeout: cfg.Timeout})
		if cfg.KeepAlive || cfg.AskClose {
			tr := &http.Transport{MaxIdleConnsPerHost: cfg.Rate, DisableKeepAlives: cfg.AskClose, DialContext: dial}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
			send = func() outcome { return do(client, cfg) }
		} else {
			send = func() outcome { return doNewConn(dial, cfg) }
		}
	}

	var procs func() []ProcCPU
	if cfg.Processes { // its first reading of every process, before the clock starts
		procs = newProcSampler().sample
	}
	start := time.Now()
	if cfg.StartAt.After(start) {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(cfg.StartAt)):
		}
		start = cfg.StartAt
	}
	res := &Result{Config: cfg, Start: start, ByKind: map[string]int{}, Backends: map[string]int{}}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); sampleCPU(sctx, res, start, readCPU, procs, time.Now) }()
	defer func() { stopSampling(); <-sampled }()
	backendIdx := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.MaxInFlight)
	interval := time.Second / time.Duration(cfg.Rate)
	next := start
	add := func(sent time.Time, lat time.Duration, o outcome) {
		kind, backend, msg := o.kind, o.backend, o.msg
		mu.Lock()
		defer mu.Unlock()
		b := -1
		if kind == "" {
			res.Backends[backend]++
			i, ok := backendIdx[backend]
			if !ok {
				i = len(res.BackendNames)
				backendIdx[backend] = i
				res.BackendNames = append(res.BackendNames, backend)
			}
			b = i
		} else if len(res.Samples) < 50 {
			res.Samples = append(res.Samples, FailureSample{At: sent, Kind: kind, Error: msg})
		}
		q := Request{SentMicros: sent.Sub(res.Start).Microseconds(), LatencyMicros: lat.Microseconds(), Kind: kind, Backend: b}
		if o.conn != nil && o.conn.connect > SlowConnect {
			q.ConnectMicros, q.SynRetransmits, q.Local, q.Remote = o.conn.connect.Microseconds(), o.conn.synRetrans, o.conn.local, o.conn.remote
		}
		res.Requests = append(res.Requests, q)
	}
	for {
		select {
		case <-ctx.Done():
			res.End = time.Now() // sending stopped; the requests in flight still complete
			wg.Wait()
			res.finish()
			return res, nil
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			add(time.Now(), 0, outcome{kind: KindOverload, msg: "more than MaxInFlight requests in flight"})
			continue
		}
		wg.Add(1)
		go func(sent time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			o := send()
			add(sent, time.Since(sent), o)
		}(time.Now())
	}
}

// RunAll runs several clients at once until ctx is cancelled (or each one's duration passes).
func RunAll(ctx context.Context, cfgs []Config) ([]*Result, error) {
	out := make([]*Result, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = Run(ctx, c)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// outcome is how one request ended: its failure kind ("" = success), the backend that answered, the
// error's text, and the connection it went over when that connection was opened for it.
type outcome struct {
	kind, backend, msg string
	conn               *handshake
}

// do sends one request and classifies the outcome.
func do(client *http.Client, cfg Config) (o outcome) {
	var body io.Reader
	if cfg.Method == http.MethodPost {
		body = strings.NewReader(`{"probe":"go-service load"}`)
	}
	req, err := http.NewRequest(cfg.Method, cfg.URL, body)
	if err != nil {
		return outcome{kind: KindOther, msg: err.Error()}
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if h, ok := ci.Conn.(*handshake); ok && !ci.Reused {
			o.conn = h
		}
	}}))
	// No GetBody: the transport can never replay this request, whatever it knows of the connection.
	req.GetBody = nil
	resp, err := client.Do(req)
	if err != nil {
		o.kind, o.msg = Classify(err), err.Error()
		return o
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case err != nil:
		o.kind, o.msg = Classify(err), err.Error()
	case resp.StatusCode >= 500:
		o.kind, o.msg = Kind5xx, statusAndBody(resp.Status, data)
	case resp.StatusCode != http.StatusOK:
		o.kind, o.msg = KindOther, statusAndBody(resp.Status, data)
	default:
		o.backend = strings.SplitN(string(data), "\n", 2)[0]
	}
	return o
}

// doNewConn sends a request on a connection of its own, which the client closes once it has read the
// answer (as curl does), rather than asking the server to close it ("Connection: close"). The side that
// closes first keeps the connection's TIME_WAIT: here the client, in its own network namespace. A
// server that closes first keeps it, and kube-proxy masquerades the host's connections to a Service to
// the node's address with a random source port (--random-fully): at 200 new connections a second a
// pod held about a thousand such TIME_WAITs, and a new SYN that met one was now and then refused for
// PAWS (13 times in a 2-minute rolling update on 2026-12-07, 25 in another with graceful already
// letting the kubelet close its probes first; 0 with the client closing first), once in a while twice
// in a row, which costs the connect TCP's 1-second retransmission.
func doNewConn(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg Config) outcome {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DialContext: dial}
	defer tr.CloseIdleConnections() // do has read the answer: the connection is idle, and closes here
	return do(&http.Client{Transport: tr, Timeout: cfg.Timeout}, cfg)
}

// statusAndBody is a failed response's status and the first line of its body (at most 200 bytes): a
// proxy's 502 or 503 usually says there what went wrong upstream.
func statusAndBody(status string, body []byte) string {
	line := strings.TrimSpace(strings.SplitN(string(body), "\n", 2)[0])
	if len(line) > 200 {
		line = line[:200]
	}
	if line == "" {
		return status
	}
	return status + ": " + line
}

// Classify names the kind of a request error.
func Classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindEOF
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case strings.Contains(err.Error(), "connection reset"):
		return KindReset
	case strings.Contains(err.Error(), "EOF"):
		return KindEOF
	}
	return KindOther
}

// finish computes the totals and the per-second series.
func (r *Result) finish() {
	sort.SliceStable(r.Requests, func(i, j int) bool { return r.Requests[i].SentMicros < r.Requests[j].SentMicros })
	secs := int(r.End.Sub(r.Start)/time.Second) + 1
	r.Seconds = make([]Second, secs)
	lat := make([][]time.Duration, secs)
	for i := range r.Seconds {
		r.Seconds[i].T = i
	}
	r.Sent, r.OK, r.Failed = len(r.Requests), 0, 0
	for _, rec := range r.Requests {
		i := int(rec.SentMicros / 1e6)
		if i < 0 || i >= secs {
			i = secs - 1
		}
		if rec.Kind == "" {
			r.OK++
			r.Seconds[i].OK++
			lat[i] = append(lat[i], rec.Latency())
			continue
		}
		r.Failed++
		r.ByKind[rec.Kind]++
		if r.Seconds[i].Failed == nil {
			r.Seconds[i].Failed = map[string]int{}
		}
		r.Seconds[i].Failed[rec.Kind]++
	}
	for i := range r.Seconds {
		r.Seconds[i].P50Milli = ms(percentile(lat[i], 0.50))
		r.Seconds[i].P99Milli = ms(percentile(lat[i], 0.99))
		r.Seconds[i].MaxMilli = ms(percentile(lat[i], 1))
	}
}

// Latency is how long the request took.
func (q Request) Latency() time.Duration { return time.Duration(q.LatencyMicros) * time.Microsecond }

// Connect is how long opening the request's connection took, when it took longer than SlowConnect (0
// otherwise).
func (q Request) Connect() time.Duration { return time.Duration(q.ConnectMicros) * time.Microsecond }

// SentAt is when the request was sent.
func (r *Result) SentAt(q Request) time.Time {
	return r.Start.Add(time.Duration(q.SentMicros) * time.Microsecond)
}

// Stats describe the requests sent in a window of a run.
type Stats struct {
	Sent, OK, Failed int
	ByKind           map[string]int
	// Latency of the successful requests.
	P50, P99, Max time.Duration
	// Backends counts successful responses per backend.
	Backends map[string]int
}

// Window returns the stats of the requests sent in [from, to).
func (r *Result) Window(from, to time.Time) Stats {
	st := Stats{ByKind: map[string]int{}, Backends: map[string]int{}}
	var l []time.Duration
	for _, q := range r.Requests {
		at := r.SentAt(q)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		st.Sent++
		if q.Kind != "" {
			st.Failed++
			st.ByKind[q.Kind]++
			continue
		}
		st.OK++
		l = append(l, q.Latency())
		if q.Backend >= 0 && q.Backend < len(r.BackendNames) {
			st.Backends[r.BackendNames[q.Backend]]++
		}
	}
	st.P50, st.P99, st.Max = percentile(l, 0.5), percentile(l, 0.99), percentile(l, 1)
	return st
}

// Latency returns the q-quantile of successful requests sent in [from, to).
func (r *Result) Latency(from, to time.Time, q float64) time.Duration {
	var l []time.Duration
	for _, rec := range r.Requests {
		at := r.SentAt(rec)
		if rec.Kind == "" && !at.Before(from) && at.Before(to) {
			l = append(l, rec.Latency())
		}
	}
	return percentile(l, q)
}

// FailedBetween counts failures of requests sent in [from, to).
func (r *Result) FailedBetween(from, to time.Time) int { return r.Window(from, to).Failed }

// Slower returns the successful requests that took longer than d.
func (r *Result) Slower(d time.Duration) []Request {
	var out []Request
	for _, q := range r.Requests {
		if q.Kind == "" && q.Latency() > d {
			out = append(out, q)
		}
	}
	return out
}

func percentile(l []time.Duration, q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(q*float64(len(s)-1) + 0.5)
	return s[idx]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Summary is a one-line description of a result.
func (r *Result) Summary() string {
	return fmt.Sprintf("%d sent, %d ok, %d failed: %s (%s, %d/s over %s)", r.Sent, r.OK, r.Failed, Kinds(r.ByKind), r.Mode(), r.Rate, r.End.Sub(r.Start).Round(time.Second))
}

// Kinds writes failure counts by kind for a reader: "refused 76, timeout 158" ("none" for none).
func Kinds(byKind map[string]int) string {
	if len(byKind) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(byKind))
	for k := range byKind {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, byKind[k])
	}
	return strings.Join(parts, ", ")
}

// Mode names the client's kind: "GET new-conn", "POST keep-alive", "gRPC pick_first".
func (c Config) Mode() string {
	if c.GRPC != "" {
		return "gRPC " + c.GRPC
	}
	m := c.Method
	if m == "" {
		m = http.MethodGet
	}
	if c.Control {
		m = "control " + m
	}
	if c.KeepAlive {
		return m + " keep-alive"
	}
	return m + " new-conn"
}
