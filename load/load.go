// Package load is an open-loop HTTP load generator for zero-downtime checks: it sends requests at a
// constant rate whatever the responses do, classifies every failure (refused, reset, EOF, timeout, 5xx,
// other), and keeps per-second counts and every latency, so a rollout's effect can be read second by
// second. By default each request uses a new connection (keep-alive hides drops: Go's client silently
// retries idempotent requests on a reused connection that the server closed).
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config of a run.
type Config struct {
	URL       string
	Rate      int           // requests per second
	Duration  time.Duration // 0: until the context is cancelled
	KeepAlive bool          // reuse connections (reported beside the gate, never the gate)
	Timeout   time.Duration // per request (default 5s)
	// MaxInFlight bounds concurrent requests (default 4 x Rate); a request that cannot start is counted
	// as a failure of kind "overload", never silently skipped.
	MaxInFlight int
}

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
}

// FailureSample is one failed request.
type FailureSample struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Error string    `json:"error"`
}

// Result of a run.
type Result struct {
	URL       string          `json:"url"`
	KeepAlive bool            `json:"keepAlive"`
	Rate      int             `json:"rate"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	Sent      int             `json:"sent"`
	OK        int             `json:"ok"`
	Failed    int             `json:"failed"`
	ByKind    map[string]int  `json:"byKind"`
	Seconds   []Second        `json:"seconds"`
	Samples   []FailureSample `json:"failureSamples"`
	// Backends counts responses per answering backend (the body's first line).
	Backends map[string]int `json:"backends"`

	records []record
}

type record struct {
	at      time.Time
	latency time.Duration
	kind    string // "" = ok
}

// Run sends requests until the duration passes or ctx is cancelled, then waits for the requests in
// flight.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Rate <= 0 || cfg.URL == "" {
		return nil, errors.New("load: URL and a positive Rate are required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 4 * cfg.Rate
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	tr := &http.Transport{
		DisableKeepAlives:   !cfg.KeepAlive,
		MaxIdleConnsPerHost: cfg.Rate,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	res := &Result{URL: cfg.URL, KeepAlive: cfg.KeepAlive, Rate: cfg.Rate, Start: time.Now(), ByKind: map[string]int{}, Backends: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.MaxInFlight)
	interval := time.Second / time.Duration(cfg.Rate)
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			res.End = time.Now()
			res.finish()
			return res, nil
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			res.records = append(res.records, record{at: time.Now(), kind: KindOverload})
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(sent time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			kind, backend, err := do(client, cfg.URL)
			lat := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			res.records = append(res.records, record{at: sent, latency: lat, kind: kind})
			if kind == "" {
				res.Backends[backend]++
			} else if len(res.Samples) < 50 {
				res.Samples = append(res.Samples, FailureSample{At: sent, Kind: kind, Error: err})
			}
		}(time.Now())
	}
}

// do sends one request and classifies the outcome ("" = success).
func do(client *http.Client, url string) (kind, backend, msg string) {
	resp, err := client.Get(url)
	if err != nil {
		return Classify(err), "", err.Error()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return Classify(err), "", err.Error()
	}
	if resp.StatusCode >= 500 {
		return Kind5xx, "", resp.Status
	}
	if resp.StatusCode != http.StatusOK {
		return KindOther, "", resp.Status
	}
	return "", strings.SplitN(string(body), "\n", 2)[0], ""
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
	sort.Slice(r.records, func(i, j int) bool { return r.records[i].at.Before(r.records[j].at) })
	secs := int(r.End.Sub(r.Start)/time.Second) + 1
	r.Seconds = make([]Second, secs)
	lat := make([][]time.Duration, secs)
	for i := range r.Seconds {
		r.Seconds[i].T = i
	}
	r.Sent, r.OK, r.Failed = len(r.records), 0, 0
	for _, rec := range r.records {
		i := int(rec.at.Sub(r.Start) / time.Second)
		if i < 0 || i >= secs {
			continue
		}
		if rec.kind == "" {
			r.OK++
			r.Seconds[i].OK++
			lat[i] = append(lat[i], rec.latency)
			continue
		}
		r.Failed++
		r.ByKind[rec.kind]++
		if r.Seconds[i].Failed == nil {
			r.Seconds[i].Failed = map[string]int{}
		}
		r.Seconds[i].Failed[rec.kind]++
	}
	for i := range r.Seconds {
		r.Seconds[i].P50Milli = ms(percentile(lat[i], 0.50))
		r.Seconds[i].P99Milli = ms(percentile(lat[i], 0.99))
	}
}

// Latency returns the q-quantile of successful requests sent in [from, to). A result decoded from JSON
// (an in-cluster run) has no per-request records: it returns the worst per-second p99 of the window.
func (r *Result) Latency(from, to time.Time, q float64) time.Duration {
	if r.records == nil {
		var worst float64
		for _, s := range r.Seconds {
			at := r.Start.Add(time.Duration(s.T) * time.Second)
			if !at.Before(from) && at.Before(to) && s.P99Milli > worst {
				worst = s.P99Milli
			}
		}
		return time.Duration(worst * float64(time.Millisecond))
	}
	var l []time.Duration
	for _, rec := range r.records {
		if rec.kind == "" && !rec.at.Before(from) && rec.at.Before(to) {
			l = append(l, rec.latency)
		}
	}
	return percentile(l, q)
}

// FailedBetween counts failures of requests sent in [from, to).
func (r *Result) FailedBetween(from, to time.Time) int {
	n := 0
	for _, rec := range r.records {
		if rec.kind != "" && !rec.at.Before(from) && rec.at.Before(to) {
			n++
		}
	}
	return n
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
	mode := "new connection per request"
	if r.KeepAlive {
		mode = "keep-alive"
	}
	return fmt.Sprintf("%d sent, %d ok, %d failed %v (%s, %d/s over %s)", r.Sent, r.OK, r.Failed, r.ByKind, mode, r.Rate, r.End.Sub(r.Start).Round(time.Second))
}

// JSON encodes the result (the per-request records stay out; the per-second series carries them).
func (r *Result) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
