package demo

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/go-service/go-service/disrupt"
	"github.com/go-service/go-service/load"
)

// runOf is a client's run that sent n requests and recorded each.
func runOf(client string, n int) *disrupt.Run {
	res := &load.Result{Config: load.Config{Name: client, Rate: 10}, Sent: n, OK: n}
	for i := 0; i < n; i++ {
		res.Requests = append(res.Requests, load.Request{})
	}
	return &disrupt.Run{Client: client, Load: res}
}

func fourClients() []*disrupt.Run {
	return []*disrupt.Run{runOf("host GET new-conn", 5), runOf("host POST keep-alive", 5),
		runOf("in-cluster GET new-conn", 5), runOf("in-cluster POST keep-alive", 5)}
}

// The demo fails without load: a verdict of 0 lost over no requests proves nothing.
func TestDemoFailsWithoutLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		releases []*release
		want     []string
	}{
		{"both releases under the four clients", []*release{{Title: "usual", Runs: fourClients()}, {Title: "go-service", Runs: fourClients()}}, nil},
		{"in-cluster clients only (no host client ran)", []*release{{Title: "usual", Runs: fourClients()[2:]}, {Title: "go-service", Runs: fourClients()[2:]}}, nil},
		{"no runs", []*release{{Title: "usual"}, {Title: "go-service"}}, []string{"usual: no load ran", "go-service: no load ran",
			"in-cluster GET new-conn: did not run", "in-cluster POST keep-alive: did not run"}},
		{"a release without runs", []*release{{Title: "usual", Runs: fourClients()}, {Title: "go-service"}}, []string{"go-service: no load ran",
			"host GET new-conn: ran for 1 of the 2 releases", "host POST keep-alive: ran for 1 of the 2 releases",
			"in-cluster GET new-conn: ran for 1 of the 2 releases", "in-cluster POST keep-alive: ran for 1 of the 2 releases"}},
		{"a host client for one release only", []*release{{Title: "usual", Runs: fourClients()}, {Title: "go-service", Runs: fourClients()[1:]}},
			[]string{"host GET new-conn: ran for 1 of the 2 releases"}},
		{"a client that sent nothing", []*release{{Title: "usual", Runs: fourClients()}, {Title: "go-service", Runs: append(fourClients()[:3], runOf("in-cluster POST keep-alive", 0))}},
			[]string{"go-service, in-cluster POST keep-alive: sent nothing"}},
		{"a client that reported totals only", []*release{{Title: "usual", Runs: fourClients()}, {Title: "go-service", Runs: append(fourClients()[:3], &disrupt.Run{Client: "in-cluster POST keep-alive", Load: &load.Result{Sent: 40, OK: 40}})}},
			[]string{"go-service, in-cluster POST keep-alive: 0 requests recorded of 40 sent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, loadProblems(tc.releases))
		})
	}
}
