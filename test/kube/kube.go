// Package kube connects the live tests to a cluster and gives them the helpers every live test needs:
// the cluster itself (KUBECONFIG, or the project's local cluster started on demand), unique namespaces
// that clean up after themselves, images built and loaded without a registry, and waits on real
// conditions with a report of what happened when they time out.
package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/cluster"
	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/internal/repo"
)

// Env is the cluster the live tests run against.
type Env struct {
	Kubeconfig string
	Client     *kubernetes.Clientset
	// Local is the project's local cluster, nil when KUBECONFIG named another cluster.
	Local *cluster.Cluster

	imagesMu sync.Mutex
	images   map[string]bool // loaded into this cluster
}

// LoadImageCmdEnv names an environment variable holding the command that loads an image tarball into a
// cluster given by KUBECONFIG ("{}" is replaced by the tarball path), e.g. `kind load image-archive {}`.
const LoadImageCmdEnv = "GO_SERVICE_LOAD_IMAGE"

// Connect returns the cluster named by KUBECONFIG, or starts (or reuses) the project's local cluster with
// the given options when KUBECONFIG is unset. It never skips: no cluster is an error.
func Connect(ctx context.Context, o cluster.Options) (*Env, error) {
	env := &Env{Kubeconfig: os.Getenv("KUBECONFIG")}
	if env.Kubeconfig == "" {
		c, err := cluster.Up(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("no KUBECONFIG given and the local cluster did not start: %w", err)
		}
		env.Local, env.Kubeconfig = c, c.Kubeconfig
	}
	client, err := cluster.Client(env.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster of %s unreachable: %w", env.Kubeconfig, err)
	}
	env.Client = client
	return env, nil
}

// Image builds an image from a Go main package of this repository and loads it into the cluster (once
// per cluster and reference).
func (e *Env) Image(tb testing.TB, spec image.Spec) string {
	tb.Helper()
	e.imagesMu.Lock()
	defer e.imagesMu.Unlock()
	if e.images == nil {
		e.images = map[string]bool{}
	}
	if e.images[spec.Ref] {
		return spec.Ref
	}
	root, err := repo.Root()
	if err != nil {
		tb.Fatal(err)
	}
	if spec.Dir == "" {
		spec.Dir = root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tar, err := image.Build(ctx, spec, filepath.Join(root, "bin", "images"))
	if err != nil {
		tb.Fatal(err)
	}
	switch cmd := os.Getenv(LoadImageCmdEnv); {
	case e.Local != nil:
		if err := e.Local.LoadImage(ctx, tar); err != nil {
			tb.Fatal(err)
		}
	case cmd != "":
		out, err := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(cmd, "{}", tar)).CombinedOutput()
		if err != nil {
			tb.Fatalf("%s: %v\n%s", LoadImageCmdEnv, err, out)
		}
	default:
		tb.Fatalf("image %s was built (%s) but cannot be loaded into the cluster of %s: set %s to the command that loads it (e.g. `kind load image-archive {}`)",
			spec.Ref, tar, e.Kubeconfig, LoadImageCmdEnv)
	}
	e.images[spec.Ref] = true
	return spec.Ref
}

// Namespace creates a namespace unique to the test and deletes it (waiting until it is gone) when the
// test ends. On failure the namespace's events and pod states are printed first.
func (e *Env) Namespace(tb testing.TB, prefix string) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%s", prefix, rand.String(6))
	ctx := context.Background()
	_, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"go-service.test/live": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create namespace %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(e.Describe(name))
		}
		if err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			tb.Errorf("delete namespace %s: %v", name, err)
			return
		}
		err := Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
			_, err := e.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return err != nil, nil
		})
		if err != nil {
			tb.Errorf("namespace %s still exists after 2m", name)
		}
	})
	return name
}

// Describe is disrupt.Describe on this cluster.
func (e *Env) Describe(ns string) string { return disrupt.Describe(e.Client, ns) }

// Poll calls cond every interval until it is true or the timeout passes (the cluster harness's own).
var Poll = cluster.Poll
