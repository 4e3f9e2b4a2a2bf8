package disrupt

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/go-service/go-service/load"
)

// The report renderer: one SVG timeline per client's run, drawn the same way on every page (a run's own
// page, a suite's index, the demo's side-by-side comparison). From top to bottom: the disruption's marks
// with their labels on as many rows as they need; requests per second (successes in green from the
// axis, failures in red stacked on them) with the p99 latency as a curve on its own scale; one lane per
// pod of the target (starting, ready, not ready, terminating); the time axis.

// Scale fixes what several timelines share so they can be compared: the seconds the x axis spans and
// the requests per second the bars' height stands for (0: each timeline's own).
type Scale struct {
	// Origin is the moment at x = 0 (zero: each run's own start). Runs that ran at the same time share
	// it, so that what happened at once is drawn one above the other.
	Origin  time.Time
	Seconds float64
	Rate    int
	Latency float64 // milliseconds at the top of the latency scale
	// MarkRows is the rows given to the marks' labels (at least what the run needs), so that timelines
	// side by side line up.
	MarkRows int
}

// ScaleOf is a scale that fits every run given, from the earliest start to the latest end.
func ScaleOf(runs ...*Run) Scale {
	var s Scale
	var end time.Time
	for _, r := range runs {
		if r == nil || r.Load == nil {
			continue
		}
		if s.Origin.IsZero() || r.Load.Start.Before(s.Origin) {
			s.Origin = r.Load.Start
		}
		if r.Load.End.After(end) {
			end = r.Load.End
		}
		for _, sec := range r.Load.Seconds {
			s.Rate = max(s.Rate, sec.OK+sum(sec.Failed))
			s.Latency = math.Max(s.Latency, sec.P99Milli)
		}
	}
	s.Seconds = end.Sub(s.Origin).Seconds() + 1
	return s
}

// ScaleFor is ScaleOf with room for the mark labels of every run at the given width.
func ScaleFor(width float64, runs ...*Run) Scale {
	s := ScaleOf(runs...)
	for _, r := range runs {
		if r != nil && r.Load != nil {
			_, rows := placeMarks(r, s.x(width, r), width-marginRight)
			s.MarkRows = max(s.MarkRows, rows)
		}
	}
	return s
}

// The timeline's margins: pod names on the left, the latency scale on the right.
const marginLeft, marginRight = 84.0, 64.0

// shift is how many seconds after the scale's origin the run's load started (0 without an origin).
func (s Scale) shift(r *Run) float64 {
	if s.Origin.IsZero() {
		return 0
	}
	return r.Load.Start.Sub(s.Origin).Seconds()
}

// x maps seconds since the run's start to pixels for a timeline width pixels wide.
func (s Scale) x(width float64, r *Run) func(sec float64) float64 {
	shift := s.shift(r)
	plotW := width - marginLeft - marginRight
	return func(sec float64) float64 { return marginLeft + (sec+shift)/s.Seconds*plotW }
}

// placed is a mark and where its label goes.
type placed struct {
	x, labelX float64
	anchor    string
	row       int
	label     string
	m         Mark
}

// placeMarks puts each mark's label on the first row where it does not overlap the previous label of
// that row; a label that would run past the right edge ends at its line instead. Pod names lose the
// Deployment's name, which every lane shares.
func placeMarks(r *Run, x func(float64) float64, right float64) ([]placed, int) {
	var out []placed
	var rowEnds []float64
	for _, m := range r.Marks {
		label := m.What
		if r.Deployment != "" {
			label = strings.ReplaceAll(label, r.Deployment+"-", "")
		}
		mx := x(m.At.Sub(r.Load.Start).Seconds())
		w := float64(len(label))*5.6 + 6
		p := placed{x: mx, labelX: mx + 2, anchor: "start", label: label, m: m}
		from, to := mx, mx+w
		if to > right {
			p.labelX, p.anchor = mx-2, "end"
			from, to = mx-w, mx
		}
		row := 0
		for row < len(rowEnds) && rowEnds[row] > from {
			row++
		}
		if row == len(rowEnds) {
			rowEnds = append(rowEnds, 0)
		}
		rowEnds[row] = to
		p.row = row
		out = append(out, p)
	}
	return out, len(rowEnds)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Kinds writes failure counts by kind for a reader: "refused 76, timeout 158" ("none" for none).
func Kinds(byKind map[string]int) string { return load.Kinds(byKind) }

// Dur writes a duration for a reader: "27.8 s", "1.9 ms", "850 µs".
func Dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

// The lanes' colours per pod state, and the legend's words.
var podStates = []struct{ state, colour, label string }{
	{"pending", "#c9c9c9", "starting"},
	{"running, not ready", "#f2c14e", "running, not ready"},
	{"ready", "#4caf7d", "ready"},
	{"terminating", "#e8833a", "terminating"},
}

func podColour(state string) string {
	for _, s := range podStates {
		if s.state == state {
			return s.colour
		}
	}
	return "#c9c9c9"
}

type lane struct {
	pod   string
	spans []span
}

type span struct {
	from, to float64 // seconds since the load started
	state    string
}

// lanes turns the timeline's pod events into one lane per pod of the target (pods named after its
// Deployment), in order of first appearance.
func lanes(r *Run, end float64) []lane {
	var out []lane
	index := map[string]int{}
	for _, e := range r.Events {
		pod, ok := strings.CutPrefix(e.Object, "pod/")
		if !ok || r.Deployment != "" && !strings.HasPrefix(pod, r.Deployment+"-") {
			continue
		}
		at := math.Max(0, e.At.Sub(r.Load.Start).Seconds())
		i, seen := index[pod]
		if !seen {
			i = len(out)
			index[pod] = i
			out = append(out, lane{pod: pod})
		}
		l := &out[i]
		if n := len(l.spans); n > 0 && l.spans[n-1].to < 0 {
			l.spans[n-1].to = at
		}
		if e.What != "deleted" {
			l.spans = append(l.spans, span{from: at, to: -1, state: e.What})
		}
	}
	for i := range out {
		if n := len(out[i].spans); n > 0 && out[i].spans[n-1].to < 0 {
			out[i].spans[n-1].to = end
		}
	}
	return out
}

// svgBuilder writes SVG elements with escaped text.
type svgBuilder struct{ strings.Builder }

func (b *svgBuilder) el(format string, a ...any) { fmt.Fprintf(&b.Builder, format+"\n", a...) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// TimelineSVG draws a run's timeline as inline SVG, width pixels wide, on the given scale (a zero field:
// the run's own).
func TimelineSVG(r *Run, width float64, sc Scale) template.HTML {
	if r == nil || r.Load == nil {
		return template.HTML(`<p class="none">no load ran</p>`)
	}
	own := ScaleOf(r)
	if sc.Seconds == 0 {
		sc.Seconds, sc.Origin = own.Seconds, own.Origin
	}
	if sc.Rate == 0 {
		sc.Rate = own.Rate
	}
	if sc.Latency == 0 {
		sc.Latency = own.Latency
	}
	sc.Rate = max(sc.Rate, 1)
	sc.Latency = math.Max(sc.Latency, 1)
	const left, right, barsH, laneH, axisH, rowH = marginLeft, marginRight, 150.0, 12.0, 26.0, 13.0
	x := sc.x(width, r)
	marks, rows := placeMarks(r, x, width-right)
	rows = max(rows, sc.MarkRows)
	marksH := float64(rows)*rowH + 4
	ls := lanes(r, r.Load.End.Sub(r.Load.Start).Seconds())
	barsTop := marksH
	barsBottom := barsTop + barsH
	lanesTop := barsBottom + 8
	axisTop := lanesTop + float64(len(ls))*(laneH+2) + 4
	height := axisTop + axisH

	var b svgBuilder
	b.el(`<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`,
		width, height, width, height, esc(r.Scenario+": "+r.Client))
	// The disruption window, shaded.
	if len(r.Marks) > 0 {
		x0, x1 := x(r.Marks[0].At.Sub(r.Load.Start).Seconds()), x(r.Marks[len(r.Marks)-1].At.Sub(r.Load.Start).Seconds())
		b.el(`<rect class="window" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eef3fb"/>`, x0, barsTop, math.Max(x1-x0, 1), axisTop-barsTop)
	}
	// Requests per second: successes from the axis, failures stacked on them.
	w := math.Max((width-left-right)/sc.Seconds-0.5, 0.5)
	okN, failN := 0, 0
	for _, s := range r.Load.Seconds {
		fail := sum(s.Failed)
		okH := float64(s.OK) / float64(sc.Rate) * (barsH - 4)
		failH := float64(fail) / float64(sc.Rate) * (barsH - 4)
		title := fmt.Sprintf("%d–%d s: %d ok, %d failed", s.T, s.T+1, s.OK, fail)
		if fail > 0 {
			title += " (" + Kinds(s.Failed) + ")"
		}
		if s.OK > 0 {
			title += fmt.Sprintf("; p50 %s, p99 %s", Dur(time.Duration(s.P50Milli*float64(time.Millisecond))), Dur(time.Duration(s.P99Milli*float64(time.Millisecond))))
		}
		bx := x(float64(s.T))
		if okH > 0 {
			okN++
			b.el(`<rect class="ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4caf7d"><title>%s</title></rect>`, bx, barsBottom-okH, w, okH, esc(title))
		}
		if fail > 0 {
			failN++
			b.el(`<rect class="fail" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d93025"><title>%s</title></rect>`, bx, barsBottom-okH-math.Max(failH, 2), w, math.Max(failH, 2), esc(title))
		}
	}
	// Left axis: requests per second.
	b.el(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, left, barsTop, left, barsBottom)
	b.el(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#555">%d/s</text>`, left-4, barsTop+8, sc.Rate)
	b.el(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#555">0</text>`, left-4, barsBottom)
	// The p99 latency per second, on the right-hand scale.
	var pts []string
	for _, s := range r.Load.Seconds {
		if s.OK == 0 {
			continue
		}
		y := barsBottom - math.Min(s.P99Milli/sc.Latency, 1)*(barsH-4)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(s.T)+0.5), y))
	}
	if len(pts) > 0 {
		b.el(`<polyline class="latency" points="%s" fill="none" stroke="#3367d6" stroke-width="1.5"/>`, strings.Join(pts, " "))
	}
	b.el(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#3367d6"/>`, width-right, barsTop, width-right, barsBottom)
	b.el(`<text x="%.1f" y="%.1f" font-size="10" fill="#3367d6">p99 %s</text>`, width-right+4, barsTop+8, esc(Dur(time.Duration(sc.Latency*float64(time.Millisecond)))))
	b.el(`<text x="%.1f" y="%.1f" font-size="10" fill="#3367d6">0</text>`, width-right+4, barsBottom)
	// Marks.
	for _, p := range marks {
		b.el(`<line class="mark" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-dasharray="3,3"><title>%s</title></line>`,
			p.x, float64(p.row)*rowH+2, p.x, axisTop, esc(p.m.What))
		b.el(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="%s" fill="#333">%s</text>`, p.labelX, float64(p.row)*rowH+10, p.anchor, esc(p.label))
	}
	// Pod lanes.
	for i, l := range ls {
		y := lanesTop + float64(i)*(laneH+2)
		for _, s := range l.spans {
			b.el(`<rect class="pod" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s, %.1f–%.1f s</title></rect>`,
				x(s.from), y, math.Max(x(s.to)-x(s.from), 1), laneH, podColour(s.state), esc(l.pod), esc(s.state), s.from, s.to)
		}
		b.el(`<text x="%.1f" y="%.1f" font-size="9" text-anchor="end" fill="#555">%s</text>`, left-4, y+laneH-2, esc(shortPod(l.pod)))
	}
	// Time axis.
	b.el(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, left, axisTop, width-right, axisTop)
	step := 5.0
	for sc.Seconds/step > 12 {
		step *= 2
	}
	shift := sc.shift(r)
	for t := 0.0; t <= sc.Seconds; t += step {
		b.el(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, x(t-shift), axisTop, x(t-shift), axisTop+4)
		b.el(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#555">%.0f s</text>`, x(t-shift), axisTop+15, t)
	}
	b.el(`<desc>%d seconds with successes, %d with failures, %d pods</desc>`, okN, failN, len(ls))
	b.el(`</svg>`)
	return template.HTML(b.String())
}

// shortPod keeps a pod name's last two parts (hash and suffix), which tell the pods apart.
func shortPod(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) <= 2 {
		return pod
	}
	return strings.Join(parts[len(parts)-2:], "-")
}

// Legend explains the timeline's colours.
const Legend = template.HTML(`<p class="legend"><span style="color:#4caf7d">&#9632;</span> requests answered per second
<span style="color:#d93025">&#9632;</span> failed <span style="color:#3367d6">&#9473;</span> p99 latency (right-hand scale)
<span style="color:#eef3fb;background:#eef3fb;border:1px solid #ccd">&#9632;</span> disruption window; pods:
<span style="color:#c9c9c9">&#9632;</span> starting <span style="color:#f2c14e">&#9632;</span> running, not ready
<span style="color:#4caf7d">&#9632;</span> ready <span style="color:#e8833a">&#9632;</span> terminating</p>`)

// Style is the pages' shared CSS.
const Style = template.CSS(`body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:14px}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.t{white-space:nowrap}.pass{color:#1e7d46;font-weight:600}.fail{color:#d93025;font-weight:600}
pre{font-size:12px;background:#f6f6f6;padding:8px;overflow-x:auto}.legend{font-size:13px;color:#444}
svg.timeline{display:block;margin:6px 0 18px}`)
