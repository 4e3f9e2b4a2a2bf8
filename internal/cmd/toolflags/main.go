// Command toolflags prints the -ldflags a pinned tool is built with, so a tool built from the module cache
// reports what Helm's own release builds report: its version and, for Helm 3, the default Kubernetes
// version of `helm template` (a plain `go build` of Helm 3 leaves it at 1.20, which the chart's
// kubeVersion refuses). Helm 4 reads its default from the client-go it is built with.
//
//	toolflags helm|helm3
package main

import (
	"fmt"
	"os"

	"github.com/go-service/go-service/internal/toolflags"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: toolflags TOOL")
		os.Exit(2)
	}
	flags, err := toolflags.LDFlags(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "toolflags:", err)
		os.Exit(1)
	}
	fmt.Println(flags)
}
