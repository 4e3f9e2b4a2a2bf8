// Package live holds what the zero-downtime live suite shares: traffic under a disruption (open-loop load
// from the host and from a pod, a pod/endpoint timeline, conntrack hygiene), and the reports (JSON and an
// HTML timeline per run, a summary table at the end).
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/internal/repo"
	"github.com/go-service/go-service/load"
	"github.com/go-service/go-service/test/kube"
)

var repoRoot, _ = repo.Root()

// ClearConntrack deletes the conntrack entries of connections to a Service IP, so that a run never sends
// packets along a translation left by an earlier run to a pod that no longer exists (source ports are
// reused within conntrack's timeout at hundreds of connections per second).
func ClearConntrack(tb testing.TB, ip string) {
	tb.Helper()
	out, err := exec.Command("conntrack", "-D", "-p", "tcp", "--orig-dst", ip).CombinedOutput()
	// conntrack exits 1 when there was nothing to delete.
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		tb.Fatalf("conntrack -D --orig-dst %s: %v\n%s", ip, err, out)
	}
}

// WaitServing waits until url answers 200 on new connections several times in a row (the Service is
// programmed on this node), before any load starts.
func WaitServing(tb testing.TB, url string) {
	tb.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	streak := 0
	err := kube.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			streak = 0
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			streak = 0
			return false, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		streak++
		return streak >= 20, nil
	})
	if err != nil {
		tb.Fatalf("%s is not serving: %v", url, err)
	}
}

// Traffic is load running while something disrupts the pods.
type Traffic struct {
	env      *kube.Env
	ns, url  string
	timeline *Timeline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	results  []*load.Result
	mu       sync.Mutex
	marks    []Mark
	podRun   string // name of the in-cluster load pod, if any
}

// TrafficOptions say which clients run.
type TrafficOptions struct {
	Rate          int  // gate rate, new connection per request (default 200/s)
	KeepAliveRate int  // a keep-alive client beside the gate (0: none)
	InCluster     bool // also run the gate client in a pod for InClusterFor
	InClusterFor  time.Duration
	Image         string // the image with `go-service load`, for the in-cluster client
	// Steady is how long the load runs before StartTraffic returns, the steady-state window the
	// disruption's latency is compared with (default 3s).
	Steady time.Duration
}

// StartTraffic clears conntrack for the Service, checks it serves, starts the timeline and the load.
func StartTraffic(t *testing.T, env *kube.Env, ns, serviceIP string, o TrafficOptions) *Traffic {
	t.Helper()
	if o.Rate == 0 {
		o.Rate = 200
	}
	url := fmt.Sprintf("http://%s:80/", serviceIP)
	ClearConntrack(t, serviceIP)
	WaitServing(t, url)
	tl, err := WatchNamespace(env.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Traffic{env: env, ns: ns, url: url, timeline: tl, cancel: cancel}
	// A test that fails before Stop (t.Fatal anywhere) still stops its load and its watches: nothing
	// keeps sending requests into the next scenario.
	t.Cleanup(func() {
		cancel()
		tr.wg.Wait()
		tl.Stop()
	})
	start := func(cfg load.Config) {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			res, err := load.Run(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			tr.mu.Lock()
			tr.results = append(tr.results, res)
			tr.mu.Unlock()
		}()
	}
	start(load.Config{URL: url, Rate: o.Rate})
	if o.KeepAliveRate > 0 {
		start(load.Config{URL: url, Rate: o.KeepAliveRate, KeepAlive: true})
	}
	if o.InCluster {
		tr.podRun = "load-" + fmt.Sprint(time.Now().UnixNano()%100000)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tr.podRun, Labels: map[string]string{"role": "load"}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "load", Image: o.Image, ImagePullPolicy: corev1.PullNever,
					Args: []string{"load", "-url", url, "-rate", fmt.Sprint(o.Rate), "-duration", o.InClusterFor.String()}}},
			},
		}
		if _, err := env.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		env.WaitPodPhase(t, ns, tr.podRun, corev1.PodRunning, time.Minute)
	}
	if o.Steady == 0 {
		o.Steady = 3 * time.Second
	}
	time.Sleep(o.Steady) // a measurement window, not a wait for a condition
	return tr
}

// Mark records a moment of the disruption (drawn on the timeline).
func (tr *Traffic) Mark(what string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.marks = append(tr.marks, Mark{At: time.Now(), What: what})
}

// Stop keeps the load running for tail (so late failures are caught), then stops everything and
// returns one Run per client: the host gate first, then keep-alive, then the in-cluster client.
func (tr *Traffic) Stop(t *testing.T, scenario, expect string, tail time.Duration) []*Run {
	t.Helper()
	time.Sleep(tail)
	tr.cancel()
	tr.wg.Wait()
	events := tr.timeline.Stop()
	var out []*Run
	for _, res := range tr.results {
		out = append(out, &Run{Scenario: scenario, Client: "host", Gate: !res.KeepAlive, Expect: expect, Load: res, Marks: tr.marks, Events: events})
	}
	if tr.podRun != "" {
		pod := tr.env.WaitPodPhase(t, tr.ns, tr.podRun, corev1.PodSucceeded, 3*time.Minute)
		var res load.Result
		logs := tr.env.Logs(t, tr.ns, pod.Name)
		if err := json.Unmarshal([]byte(logs[strings.Index(logs, "{"):]), &res); err != nil {
			t.Fatalf("in-cluster load result: %v\n%s", err, logs)
		}
		out = append(out, &Run{Scenario: scenario, Client: "in-cluster", Gate: true, Expect: expect, Load: &res, Marks: tr.marks, Events: events})
	}
	// The gate runs first in the list.
	for i := range out {
		if out[i].Gate && i != 0 && out[0].Load.KeepAlive {
			out[0], out[i] = out[i], out[0]
		}
	}
	return out
}
