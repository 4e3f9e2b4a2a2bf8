package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ComponentError is a component that did not start or did not become ready in time: which one, why,
// and the end of its log. Callers find the component with errors.As.
type ComponentError struct {
	Component string
	Err       error
	Log       string // path of the component's log
	LogTail   string // its last lines when the error happened
}

func (e *ComponentError) Error() string {
	return fmt.Sprintf("%s failed: %v\n--- last lines of %s:\n%s", e.Component, e.Err, e.Log, e.LogTail)
}

func (e *ComponentError) Unwrap() error { return e.Err }

// componentError says which component failed and shows the end of its log.
func componentError(p paths, name string, err error) error {
	return &ComponentError{Component: name, Err: err, Log: p.log(name), LogTail: tail(p.log(name), 30)}
}

// waitFor polls ready until it returns nil, and stops at once when the component's process has exited;
// the error is a *ComponentError for that component.
func waitFor(ctx context.Context, p paths, pr procs, name string, timeout time.Duration, ready func(context.Context) error) error {
	exited := false
	err := Poll(ctx, timeout, 100*time.Millisecond, func() (bool, error) {
		if !pr.alive(name) {
			exited = true
			return true, nil
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := ready(cctx)
		return err == nil, err
	})
	if exited {
		err = errNotRunning
	}
	if err != nil {
		return componentError(p, name, err)
	}
	return nil
}

// criAnswers asks a containerd for its CRI runtime version: the call the kubelet makes first, and fails
// on, when containerd is not there yet.
func criAnswers(socket string) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
		if err != nil {
			return fmt.Errorf("CRI v1 Version on %s: %w", socket, err)
		}
		if v.RuntimeApiVersion != "v1" {
			return fmt.Errorf("CRI on %s speaks %q, want v1", socket, v.RuntimeApiVersion)
		}
		return nil
	}
}

// httpAnswers GETs a health endpoint on this machine and wants 200 with the given body. Serving
// certificates of the components are self-signed: the address is loopback, so none is verified.
func httpAnswers(url, body string) func(context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK || (body != "" && string(got) != body) {
			return fmt.Errorf("GET %s: %s %q", url, resp.Status, got)
		}
		return nil
	}
}
