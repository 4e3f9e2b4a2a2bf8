package chart_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	kit "github.com/go-service/go-service/render"
	"github.com/go-service/go-service/test/render"
)

// BenchmarkRender renders the same cases three ways, each followed by the same strict decode:
//   - kit: the chart loaded and its schema compiled once (render.Load, then Chart.Render per case);
//   - sdk: the Helm SDK with the chart loaded and the schema compiled for every render (render.Render
//     with a chart path, what a suite calling the SDK per case pays);
//   - cli: one `helm template` process per case (terratest's helm.RenderTemplate).
func BenchmarkRender(b *testing.B) {
	cases := cliCases(b)
	chartDir, err := render.ChartDir()
	require.NoError(b, err)
	chart, err := kit.Load(chartDir)
	require.NoError(b, err)
	perRender := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(cases)), "µs/render")
	}
	b.Run("kit", func(b *testing.B) {
		for b.Loop() {
			for _, c := range cases {
				chart.MustRender(b, sdkOptions(c))
			}
		}
		perRender(b)
	})
	b.Run("sdk", func(b *testing.B) {
		for b.Loop() {
			for _, c := range cases {
				opts := sdkOptions(c)
				opts.Chart = chartDir
				_, err := kit.Render(opts)
				require.NoError(b, err)
			}
		}
		perRender(b)
	})
	b.Run("cli", func(b *testing.B) {
		for b.Loop() {
			for _, c := range cases {
				_, err := render.Decode(renderCLI(b, chartDir, c))
				require.NoError(b, err)
			}
		}
		perRender(b)
	})
}

// BenchmarkRenderSpeedup times the kit and the helm CLI over the same cases in each iteration and
// reports how many times faster the kit is (cli/kit), the figure users' suites gain.
func BenchmarkRenderSpeedup(b *testing.B) {
	cases := cliCases(b)
	chartDir, err := render.ChartDir()
	require.NoError(b, err)
	chart, err := kit.Load(chartDir)
	require.NoError(b, err)
	var fast, cli time.Duration
	for b.Loop() {
		start := time.Now()
		for _, c := range cases {
			chart.MustRender(b, sdkOptions(c))
		}
		fast += time.Since(start)
		start = time.Now()
		for _, c := range cases {
			_, err := render.Decode(renderCLI(b, chartDir, c))
			require.NoError(b, err)
		}
		cli += time.Since(start)
	}
	renders := float64(b.N * len(cases))
	b.ReportMetric(float64(fast.Microseconds())/renders, "kit-µs/render")
	b.ReportMetric(float64(cli.Microseconds())/renders, "cli-µs/render")
	b.ReportMetric(float64(cli)/float64(fast), "cli/kit")
}
