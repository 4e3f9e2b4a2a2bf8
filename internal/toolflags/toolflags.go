// Package toolflags computes the -ldflags the pinned Helm CLIs are built with: the version details Helm's
// release builds stamp in (its Makefile's LDFLAGS), taken from the module versions go.mod pins.
package toolflags

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// module is a tool's module and the package path prefix of its version variables.
var modules = map[string]string{
	"helm":  "helm.sh/helm/v4",
	"helm3": "helm.sh/helm/v3",
}

// LDFlags returns the -ldflags for the named tool ("" for a tool built without any).
func LDFlags(tool string) (string, error) {
	mod, ok := modules[tool]
	if !ok {
		return "", nil
	}
	version, gomod, err := pinned(mod)
	if err != nil {
		return "", err
	}
	flags := []string{"-X " + mod + "/internal/version.version=" + version}
	if tool == "helm3" {
		major, minor, err := k8sVersion(gomod)
		if err != nil {
			return "", err
		}
		for _, pkg := range []string{"pkg/lint/rules", "pkg/chartutil"} {
			flags = append(flags, fmt.Sprintf("-X %s/%s.k8sVersionMajor=%s -X %s/%s.k8sVersionMinor=%s", mod, pkg, major, mod, pkg, minor))
		}
	}
	return strings.Join(flags, " "), nil
}

// pinned returns the version of mod that the main module pins and the path of that version's go.mod.
func pinned(mod string) (version, gomod string, err error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.GoMod}}", mod).Output()
	if err != nil {
		return "", "", fmt.Errorf("go list -m %s: %w", mod, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", "", fmt.Errorf("go list -m %s: unexpected output %q", mod, out)
	}
	return f[0], f[1], nil
}

var clientGo = regexp.MustCompile(`^\s*k8s\.io/client-go v0\.(\d+)\.\d+`)

// k8sVersion is the Kubernetes version of the client-go a module's go.mod requires (v0.36.x is 1.36), as
// Helm's Makefile derives it.
func k8sVersion(gomod string) (major, minor string, err error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := clientGo.FindStringSubmatch(s.Text()); m != nil {
			return "1", m[1], nil
		}
	}
	return "", "", fmt.Errorf("%s requires no k8s.io/client-go", gomod)
}
