package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/load"
)

// Each -client spec becomes its client; a wrong one is refused with the part at fault named.
func TestClientFlags(t *testing.T) {
	cases := []struct {
		spec  string
		want  load.Config
		query string
		err   string
	}{
		{spec: "GET:new-conn:200", want: load.Config{Method: "GET", Rate: 200}},
		{spec: "get:new-conn-close:100", want: load.Config{Method: "GET", Rate: 100, AskClose: true}},
		{spec: "POST:keep-alive:50:sleep=100ms", want: load.Config{Method: "POST", Rate: 50, KeepAlive: true}, query: "sleep=100ms"},
		{spec: "GET:persistent:5", err: `connection "persistent": want new-conn, new-conn-close or keep-alive`},
		{spec: "GET:new-conn:0", err: `rate "0" is not a positive number`},
		{spec: "GET:new-conn", err: "want METHOD:CONN:RATE[:QUERY]"},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			var f clientFlags
			err := f.Set(c.spec)
			if c.err != "" {
				assert.ErrorContains(t, err, c.err)
				assert.Empty(t, f, "nothing half-added")
				return
			}
			require.NoError(t, err)
			require.Len(t, f, 1)
			assert.Equal(t, c.want, f[0].Config)
			assert.Equal(t, c.query, f[0].query)
		})
	}
}
