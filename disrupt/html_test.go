package disrupt

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/go-service/go-service/load"
)

func TestTimelineSVG(t *testing.T) {
	r := run(3) // 20 s at 100/s, 3 refused at 10 s; marks at 5 s and 15 s
	r.Load.Seconds = nil
	r.Load.Requests[1000].Kind = "refused"
	// The per-second series as load computes it.
	for i := range 21 {
		s := secondOf(i, 100)
		if i == 10 {
			s.OK, s.Failed = 97, map[string]int{"refused": 3}
		}
		r.Load.Seconds = append(r.Load.Seconds, s)
	}
	r.Deployment = "api"
	start := r.Load.Start
	r.Marks = append(r.Marks, Mark{At: start.Add(5 * time.Second), What: "evicted api-7d4-abcde"})
	r.Events = []Event{
		{At: start.Add(time.Second), Object: "pod/api-7d4-abcde", What: "ready"},
		{At: start.Add(6 * time.Second), Object: "pod/api-7d4-abcde", What: "terminating"},
		{At: start.Add(12 * time.Second), Object: "pod/api-7d4-abcde", What: "deleted"},
		{At: start.Add(6 * time.Second), Object: "pod/api-7d4-fghij", What: "pending"},
		{At: start.Add(8 * time.Second), Object: "pod/api-7d4-fghij", What: "ready"},
		{At: start.Add(2 * time.Second), Object: "pod/load-123", What: "ready"},
	}
	svg := string(TimelineSVG(r, 900, Scale{}))
	assert.Equal(t, 21, strings.Count(svg, `class="ok"`), "a success bar per second")
	assert.Equal(t, 1, strings.Count(svg, `class="fail"`), "one second with failures")
	assert.Contains(t, svg, "10–11 s: 97 ok, 3 failed (refused 3)")
	assert.Equal(t, 4, strings.Count(svg, `class="pod"`), "ready then terminating, then pending then ready; the load pod has no lane")
	assert.NotContains(t, svg, "load-123")
	assert.Contains(t, svg, ">evicted 7d4-abcde<", "the label drops the Deployment's name")
	assert.Contains(t, svg, `class="latency"`)
	assert.Contains(t, svg, ">20 s<", "the time axis")
}

func secondOf(i, ok int) load.Second {
	return load.Second{T: i, OK: ok, P50Milli: 1, P99Milli: 2, MaxMilli: 3}
}

func TestPlaceMarks(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := run(0)
	r.Marks = []Mark{{At: start.Add(time.Second), What: "rollout"}, {At: start.Add(1100 * time.Millisecond), What: "evicted a"},
		{At: start.Add(19 * time.Second), What: "rollout done"}}
	x := Scale{Seconds: 20}.x(500, r)
	marks, rows := placeMarks(r, x, 500-marginRight)
	assert.Equal(t, 2, rows, "two labels at almost the same time take two rows")
	assert.Equal(t, []int{0, 1, 0}, []int{marks[0].row, marks[1].row, marks[2].row})
	assert.Equal(t, "end", marks[2].anchor, "a label at the right edge ends at its line")
}
