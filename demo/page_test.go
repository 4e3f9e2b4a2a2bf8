package demo

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

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageCheck is what a person opening the page would see: its console errors and uncaught exceptions,
// and per release column, whether a timeline is drawn (an SVG with a size on screen and bars in it).
type pageCheck struct {
	Errors []string
	Drawn  map[string]int // release key -> timelines drawn with bars
}

// checkInChromium opens a page in Debian's headless Chromium, collects what went wrong, counts the
// drawn timelines per release column, and saves a full-page screenshot.
func checkInChromium(t *testing.T, page, screenshot string, keys []string) pageCheck {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "headless Chromium checks the page: apt-get install chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	res := pageCheck{Drawn: map[string]int{}}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range e.Args {
					args = append(args, strings.Trim(string(a.Value), `"`))
				}
				res.Errors = append(res.Errors, "console.error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
				msg += " " + ex.Description
			}
			res.Errors = append(res.Errors, "exception: "+msg)
		}
	}))
	abs, err := filepath.Abs(page)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+abs), chromedp.WaitReady("body")))
	for _, k := range keys {
		js := fmt.Sprintf(`Array.from(document.querySelectorAll(".release-%s svg.timeline")).filter(s => {
			const b = s.getBoundingClientRect(); return b.width > 100 && b.height > 100 && s.querySelectorAll("rect.ok, rect.fail").length > 0 }).length`, k)
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		require.NoError(t, err)
		res.Drawn[k] = n
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(screenshot, shot, 0o644))
	// Events still on their way are in by the time the screenshot is taken.
	mu.Lock()
	defer mu.Unlock()
	return res
}

// checkPage opens the demo's page as a person would and asserts it loaded cleanly with both releases'
// timelines drawn.
func (d *demo) checkPage(t *testing.T) {
	shot := filepath.Join(d.out, "screenshot.png")
	res := checkInChromium(t, filepath.Join(d.out, "index.html"), shot, []string{"usual", "go-service"})
	assert.Empty(t, res.Errors, "the page loads with no console error")
	for _, r := range d.releases {
		assert.Equal(t, len(r.Runs), res.Drawn[r.Key], "%s: every client's timeline is drawn", r.Title)
	}
	fmt.Printf("demo: the page loaded in Chromium with no console error; timelines drawn: %v; screenshot %s\n", res.Drawn, shot)
}

// The page check fails on what a reader would trip on: a script error, and a release whose timeline
// is missing or empty.
func TestPageCheckCatchesBrokenPages(t *testing.T) {
	dir := t.TempDir()
	timeline := `<svg class="timeline" width="600" height="200"><rect class="ok" x="0" y="0" width="10" height="10"/></svg>`
	for _, tc := range []struct {
		name       string
		html       string
		wantErrors int
		wantDrawn  map[string]int
	}{
		{"both drawn", `<div class="release-usual">` + timeline + `</div><div class="release-go-service">` + timeline + `</div>`, 0, map[string]int{"usual": 1, "go-service": 1}},
		{"a script error", `<script>undefinedFunction()</script><div class="release-usual">` + timeline + `</div>`, 1, map[string]int{"usual": 1, "go-service": 0}},
		{"a console error", `<script>console.error("bad data")</script>`, 1, map[string]int{"usual": 0, "go-service": 0}},
		{"an empty timeline", `<div class="release-usual"><svg class="timeline" width="600" height="200"></svg></div>`, 0, map[string]int{"usual": 0, "go-service": 0}},
		{"a hidden timeline", `<div class="release-usual" style="display:none">` + timeline + `</div>`, 0, map[string]int{"usual": 0, "go-service": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := filepath.Join(dir, "page.html")
			require.NoError(t, os.WriteFile(page, []byte("<!doctype html><html><body>"+tc.html+"</body></html>"), 0o644))
			res := checkInChromium(t, page, filepath.Join(dir, "shot.png"), []string{"usual", "go-service"})
			assert.Len(t, res.Errors, tc.wantErrors, "%v", res.Errors)
			assert.Equal(t, tc.wantDrawn, res.Drawn)
		})
	}
}
