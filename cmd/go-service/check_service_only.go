//go:build service_only

package main

import (
	"fmt"
	"os"
)

// The service image is built with -tags service_only: it serves, loads and gets, and leaves the checker
// (and the Helm SDK it brings) out.
func runCheck([]string) int {
	fmt.Fprintln(os.Stderr, "go-service check: not in this build (the service image is built with -tags service_only); build the CLI without that tag: go build ./cmd/go-service")
	return 2
}
