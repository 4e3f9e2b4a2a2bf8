package chart_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-service/go-service/test/render"
)

// BenchmarkRender renders the same cases in-process (Helm SDK) and through one `helm template` process per
// case (terratest's helm module), each followed by the same strict decode.
func BenchmarkRender(b *testing.B) {
	cases := cliCases(b)
	chartDir, err := render.ChartDir()
	require.NoError(b, err)
	b.Run("sdk", func(b *testing.B) {
		for b.Loop() {
			for _, c := range cases {
				renderSDK(b, c)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cases)), "ns/render")
	})
	b.Run("cli", func(b *testing.B) {
		for b.Loop() {
			for _, c := range cases {
				_, err := render.Decode(renderCLI(b, chartDir, c))
				require.NoError(b, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cases)), "ns/render")
	})
}

// BenchmarkRenderSpeedup times both paths over the same cases in each iteration and reports how many
// times faster the in-process path is (cli/sdk), the figure the render suite's design rests on.
func BenchmarkRenderSpeedup(b *testing.B) {
	cases := cliCases(b)
	chartDir, err := render.ChartDir()
	require.NoError(b, err)
	var sdk, cli time.Duration
	for b.Loop() {
		start := time.Now()
		for _, c := range cases {
			renderSDK(b, c)
		}
		sdk += time.Since(start)
		start = time.Now()
		for _, c := range cases {
			_, err := render.Decode(renderCLI(b, chartDir, c))
			require.NoError(b, err)
		}
		cli += time.Since(start)
	}
	renders := float64(b.N * len(cases))
	b.ReportMetric(float64(sdk.Microseconds())/renders, "sdk-µs/render")
	b.ReportMetric(float64(cli.Microseconds())/renders, "cli-µs/render")
	b.ReportMetric(float64(cli)/float64(sdk), "cli/sdk")
}
