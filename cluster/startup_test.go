package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeCRI is a containerd stand-in: a real gRPC server on a Unix socket that answers the CRI v1 Version
// call the kubelet makes first. It records when it first answered.
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu       sync.Mutex
	answered time.Time
}

func (f *fakeCRI) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answered.IsZero() {
		f.answered = time.Now()
	}
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeCRI) firstAnswer() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answered
}

// fakeProcs records which component started when, instead of starting processes. Starting the node's
// containerd makes fakeCRI listen on its socket after delay (never when delay < 0).
type fakeProcs struct {
	t      *testing.T
	p      paths
	socket string
	delay  time.Duration
	exits  bool // containerd exits right after it starts
	cri    *fakeCRI

	mu      sync.Mutex
	started map[string]time.Time
	order   []string
}

func (f *fakeProcs) start(name string, _, _ []string) error {
	f.mu.Lock()
	f.started[name] = time.Now()
	f.order = append(f.order, name)
	f.mu.Unlock()
	require.NoError(f.t, writeFile(f.p.log(name), []byte(name+": fake log line\n"), 0o644))
	if name == "containerd-node1" && f.delay >= 0 && !f.exits {
		srv := grpc.NewServer()
		runtimeapi.RegisterRuntimeServiceServer(srv, f.cri)
		// A listen error shows as a containerd that never answers.
		timer := time.AfterFunc(f.delay, func() {
			if l, err := net.Listen("unix", f.socket); err == nil {
				go func() { _ = srv.Serve(l) }()
			}
		})
		f.t.Cleanup(func() { timer.Stop(); srv.Stop() })
	}
	return nil
}

func (f *fakeProcs) alive(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.started[name]
	return ok && !(f.exits && name == "containerd-node1")
}

func (f *fakeProcs) startedAt(name string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.started[name]
	return at, ok
}

// testNode is node 1 with its containerd state in a temporary directory.
type testNode struct {
	hostNode
	run string
}

func (x testNode) layout(p paths) nodeLayout {
	l := x.hostNode.layout(p)
	l.ContainerdState = x.run
	return l
}

// newTestBringUp returns a bring-up of one node whose processes and images are fakes; the node's
// configuration is written (CNI included) unless noCNI.
func newTestBringUp(t *testing.T, delay time.Duration, noCNI bool) (*bringUp, *fakeProcs, *[]time.Time) {
	// Unix socket paths are short: not under t.TempDir's long name.
	run, err := os.MkdirTemp("", "cri")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(run) })
	p := paths{t.TempDir()}
	n := nodeFor(1, "192.0.2.2")
	kind := testNode{hostNode{n}, run}
	fp := &fakeProcs{t: t, p: p, socket: kind.layout(p).socket(), delay: delay, cri: &fakeCRI{}, started: map[string]time.Time{}}
	var loads []time.Time
	b := &bringUp{o: Options{Log: t.Logf}, p: p, procs: fp, timeout: 10 * time.Second,
		kindOf:    func(Node) nodeKind { return kind },
		loadImage: func(context.Context, string, string) error { loads = append(loads, time.Now()); return nil },
		nodes:     []Node{n}, hk: "/cache/hk", pauseBuild: make(chan built, 1)}
	b.pauseBuild <- built{path: "/cache/pause.tar"}
	if !noCNI {
		require.NoError(t, writeNodeConfig(p, n, kind.layout(p), "1s"))
	}
	return b, fp, &loads
}

// The kubelet and kube-proxy of a node start only once its containerd answers the CRI, however late.
func TestNodeAgentsWaitForContainerd(t *testing.T) {
	t.Parallel()
	const late = 2 * time.Second
	for _, tc := range []struct {
		name  string
		steps func(b *bringUp) []step
	}{
		{"bring-up steps", func(b *bringUp) []step {
			return []step{{"containerd", b.startContainerds}, {"kubelet and kube-proxy", b.startNodeAgents}}
		}},
		// Even started right behind containerd, with nothing between, the kubelet step waits.
		{"kubelet step alone", func(b *bringUp) []step {
			return []step{{"containerd (no wait)", func(context.Context) error {
				return b.startComponent(b.nodes[0], compContainerd, []string{"/usr/bin/containerd"})
			}}, {"kubelet and kube-proxy", b.startNodeAgents}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, fp, loads := newTestBringUp(t, late, false)
			require.NoError(t, b.run(context.Background(), tc.steps(b)))

			answered := fp.cri.firstAnswer()
			require.False(t, answered.IsZero(), "the fake containerd never answered")
			containerd, _ := fp.startedAt("containerd-node1")
			kubelet, ok := fp.startedAt("kubelet-node1")
			require.True(t, ok, "the kubelet was never started")
			proxy, ok := fp.startedAt("kube-proxy-node1")
			require.True(t, ok, "kube-proxy was never started")

			assert.Equal(t, []string{"containerd-node1", "kubelet-node1", "kube-proxy-node1"}, fp.order)
			assert.False(t, kubelet.Before(answered), "kubelet started %s before containerd first answered", answered.Sub(kubelet))
			assert.False(t, proxy.Before(answered), "kube-proxy started %s before containerd first answered", answered.Sub(proxy))
			// The socket only exists `late` after containerd started: the kubelet cannot have started sooner.
			assert.GreaterOrEqual(t, kubelet.Sub(containerd), late)
			for _, l := range *loads {
				assert.False(t, l.Before(answered), "the pause image was imported before containerd answered")
			}
		})
	}
}

// When containerd never answers, exits, or the node's CNI configuration is missing, the kubelet is not
// started and the error names the component and shows its log.
func TestNodeAgentsRefuseToStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		exits     bool
		noCNI     bool
		component string
		wantErr   error  // errors.Is
		mentions  string // in the error
	}{
		{name: "containerd never answers", delay: -1, component: "containerd-node1", wantErr: context.DeadlineExceeded, mentions: "containerd.sock"},
		{name: "containerd exits", delay: -1, exits: true, component: "containerd-node1", wantErr: errNotRunning},
		{name: "no CNI configuration", delay: 0, noCNI: true, component: "kubelet-node1", mentions: "CNI configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, fp, _ := newTestBringUp(t, tc.delay, tc.noCNI)
			fp.exits = tc.exits
			b.timeout = time.Second
			require.NoError(t, b.startComponent(b.nodes[0], compContainerd, []string{"/usr/bin/containerd"}))
			err := b.startNodeAgents(context.Background())
			require.Error(t, err)

			var ce *ComponentError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.component, ce.Component)
			if tc.component == "containerd-node1" {
				assert.Contains(t, ce.LogTail, "containerd-node1: fake log line")
			}
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			if tc.mentions != "" {
				assert.Contains(t, err.Error(), tc.mentions)
			}
			_, kubelet := fp.startedAt("kubelet-node1")
			_, proxy := fp.startedAt("kube-proxy-node1")
			assert.False(t, kubelet, "the kubelet was started")
			assert.False(t, proxy, "kube-proxy was started")
		})
	}
}

// The command runner's error carries the command, its output and its exit status.
func TestCmdError(t *testing.T) {
	t.Parallel()
	out, err := run(context.Background(), "sh", "-c", "echo boom; exit 3")
	var ce *CmdError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, []string{"sh", "-c", "echo boom; exit 3"}, ce.Args)
	assert.Equal(t, 3, ce.ExitCode)
	assert.Equal(t, "boom\n", ce.Output)
	assert.Equal(t, out, ce.Output)

	_, err = run(context.Background(), filepath.Join(t.TempDir(), "missing"))
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, -1, ce.ExitCode)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the exec error is kept: %v", err)

	_, err = run(context.Background(), "true")
	assert.NoError(t, err)
}
