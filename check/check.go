// Package check is `go-service check`: it runs the zero-downtime rules (package rules) over manifests
// from a file or stdin, over a chart rendered in process with values files, or over a running release,
// and prints the violations for a person (text) or for CI (json). Its exit status is 1 when a rule is
// broken, 2 when the input cannot be read.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/go-service/go-service/render"
	"github.com/go-service/go-service/rules"
)

// Exit statuses.
const (
	OK        = 0 // no rule broken
	Violated  = 1 // at least one rule broken
	BadInput  = 2 // usage error, unreadable input, a chart that does not render, no cluster
	usageText = `usage:
  go-service check [flags] [FILE]            manifests from FILE, or stdin when FILE is - or absent
  go-service check -f FILE [-f FILE]...       the same, FILE named as kubectl takes it
  go-service check --chart DIR [-f values.yaml]... [flags]
                                              a chart rendered in process (as helm template would)
  go-service check --live -n NAMESPACE DEPLOYMENT [--kubeconfig FILE]
                                              a running release: its Deployment, HPA, budgets and Services,
                                              with the cluster's version and kube-proxy's sync period

flags:
`
)

// Report is what check found, as --format json prints it.
type Report struct {
	// Source says what was checked: a file, "stdin", a chart directory or namespace/deployment.
	Source string `json:"source"`
	// KubeVersion is the Kubernetes version the rules applied (the cluster's, with --live).
	KubeVersion string `json:"kubeVersion"`
	// Deployments counts the Deployments checked.
	Deployments int `json:"deployments"`
	// Violations are the broken rules (empty: none).
	Violations []rules.Violation `json:"violations"`
	// Skipped lists the kinds of documents the checker does not know (custom resources), not checked.
	Skipped []string `json:"skipped,omitempty"`
	// Cluster holds what --live read from the cluster.
	Cluster *ClusterFacts `json:"cluster,omitempty"`
}

// Run runs `go-service check` with args (without the command name) and returns the exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("go-service check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	chart := fs.String("chart", "", "render this chart directory or archive in process instead of reading manifests")
	var valuesFiles multiFlag
	fs.Var(&valuesFiles, "f", "with --chart, a values file (repeatable, merged in order like helm -f); otherwise a manifest file, as kubectl -f")
	kube := fs.String("kube-version", render.DefaultKubeVersion, "the Kubernetes version to check for (--live uses the cluster's)")
	release := fs.String("release", "release", "the release name for --chart")
	namespace := fs.String("n", "", "the namespace: of the release for --chart (default \"default\"), of the Deployment for --live")
	format := fs.String("format", "text", "output format: text or json")
	live := fs.Bool("live", false, "check a running Deployment (argument: its name) with the objects that concern it")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig for --live (default $KUBECONFIG)")
	var proxyMetrics nodeURLs
	fs.Var(&proxyMetrics, "proxy-metrics", "with --live, a node's kube-proxy metrics page, NODE=URL (repeatable; default: each node's through the API server's node proxy on port 10249)")
	if err := fs.Parse(args); err != nil {
		return BadInput
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "go-service check: --format %q: want text or json\n", *format)
		return BadInput
	}
	// A flag that does nothing in the chosen mode is a mistake the user should hear about, not one to
	// ignore: each mode lists the flags it reads.
	mode, allowed := "manifests", map[string]bool{"f": true, "kube-version": true, "format": true}
	switch {
	case *live:
		mode, allowed = "--live", map[string]bool{"live": true, "n": true, "kubeconfig": true, "format": true, "proxy-metrics": true}
	case *chart != "":
		mode, allowed = "--chart", map[string]bool{"chart": true, "f": true, "kube-version": true, "release": true, "n": true, "format": true}
	}
	var stray []string
	fs.Visit(func(f *flag.Flag) {
		if !allowed[f.Name] {
			stray = append(stray, "-"+f.Name)
		}
	})
	if len(stray) > 0 {
		fmt.Fprintf(stderr, "go-service check: %s does not apply to %s\n", strings.Join(stray, ", "), modeName(mode))
		fs.Usage()
		return BadInput
	}

	var (
		rep  Report
		objs []runtime.Object
		err  error
	)
	switch {
	case *live:
		if fs.NArg() != 1 || *namespace == "" || *chart != "" {
			fmt.Fprintln(stderr, "go-service check: --live needs -n NAMESPACE and one DEPLOYMENT name (and no --chart)")
			return BadInput
		}
		var facts *ClusterFacts
		objs, facts, err = readLive(ctx, *kubeconfig, *namespace, fs.Arg(0), proxyMetrics)
		if err == nil {
			rep.Source, rep.KubeVersion, rep.Cluster = *namespace+"/"+fs.Arg(0), facts.Version, facts
		}
	case *chart != "":
		if fs.NArg() != 0 {
			fmt.Fprintln(stderr, "go-service check: --chart takes no FILE argument")
			return BadInput
		}
		var res *render.Result
		res, err = render.Render(render.Options{Chart: *chart, ValuesFiles: valuesFiles, KubeVersion: *kube, ReleaseName: *release, Namespace: *namespace})
		if err == nil {
			objs, rep.Source, rep.KubeVersion = res.Objects, *chart, *kube
		}
	default:
		// Manifests: the files -f names (as kubectl takes them) or one FILE argument, else stdin.
		files := append([]string(nil), valuesFiles...)
		if fs.NArg() > 1 || fs.NArg() == 1 && len(files) > 0 {
			fmt.Fprintln(stderr, "go-service check: give the manifests as one FILE argument or with -f, not both")
			fs.Usage()
			return BadInput
		}
		if fs.NArg() == 1 && fs.Arg(0) != "-" {
			files = []string{fs.Arg(0)}
		}
		var data []byte
		var name string
		data, name, err = readManifests(stdin, files)
		if err == nil && strings.TrimSpace(stripComments(string(data))) == "" {
			err = fmt.Errorf("%s is empty: no manifest to check", name)
		}
		if err == nil {
			objs, rep.Skipped, err = render.DecodeKnown(string(data))
			rep.Source, rep.KubeVersion = name, *kube
		}
		if err == nil && countDeployments(objs) == 0 {
			err = fmt.Errorf("%s has no Deployment, so nothing to check (kinds read: %s)", name, kindsOf(objs, rep.Skipped))
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "go-service check:", err)
		return BadInput
	}

	rep.Violations, err = rules.Check(objs, rules.Options{KubeVersion: rep.KubeVersion})
	if err != nil {
		fmt.Fprintln(stderr, "go-service check:", err)
		return BadInput
	}
	if rep.Cluster != nil {
		rep.Violations = append(rep.Violations, rep.Cluster.violations(objs)...)
	}
	if rep.Violations == nil {
		rep.Violations = []rules.Violation{}
	}
	rep.Deployments = countDeployments(objs)
	sort.Strings(rep.Skipped)

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "go-service check:", err)
			return BadInput
		}
	} else {
		printText(stdout, rep)
	}
	if len(rep.Violations) > 0 {
		return Violated
	}
	return OK
}

func printText(w io.Writer, rep Report) {
	if rep.Cluster != nil {
		fmt.Fprintf(w, "cluster: Kubernetes %s; kube-proxy sync period: %s\n", rep.Cluster.Version, rep.Cluster.describeSync())
		for _, l := range rep.Cluster.Propagation {
			fmt.Fprintf(w, "endpoint propagation on %s\n", l)
		}
		if d := rep.Cluster.RecommendedDelay; d != nil {
			fmt.Fprintf(w, "recommended preStop delay: %s (the largest p99 above, plus a second)\n", d.Duration)
		}
	}
	for _, v := range rep.Violations {
		fmt.Fprintf(w, "%s %s\n  %s\n  fix: %s [%s]\n", v.Object, v.Field, v.Message, v.Fix, v.Rule)
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "not checked (kinds these rules do not cover): %s\n", strings.Join(rep.Skipped, ", "))
	}
	switch n := len(rep.Violations); n {
	case 0:
		fmt.Fprintf(w, "%s: no zero-downtime rule broken (%d Deployment(s), Kubernetes %s)\n", rep.Source, rep.Deployments, rep.KubeVersion)
	default:
		fmt.Fprintf(w, "%s: %d zero-downtime rule(s) broken (%d Deployment(s), Kubernetes %s)\n", rep.Source, n, rep.Deployments, rep.KubeVersion)
	}
}

func countDeployments(objs []runtime.Object) int {
	n := 0
	for _, o := range objs {
		if _, ok := o.(*appsv1.Deployment); ok {
			n++
		}
	}
	return n
}

// modeName names a mode in an error message.
func modeName(mode string) string {
	if mode == "manifests" {
		return "checking manifests (a FILE, -f FILE or stdin)"
	}
	return mode
}

// readManifests reads the named files in order (stdin when there are none, or for "-") and returns their
// documents joined, and a name for the source.
func readManifests(stdin io.Reader, files []string) ([]byte, string, error) {
	if len(files) == 0 {
		data, err := io.ReadAll(stdin)
		return data, "stdin", err
	}
	var docs []string
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, "", err
		}
		docs = append(docs, string(data))
	}
	name := strings.Join(files, ", ")
	if files[0] == "-" && len(files) == 1 {
		name = "stdin"
	}
	return []byte(strings.Join(docs, "\n---\n")), name, nil
}

// stripComments drops the YAML comment lines and document separators: what is left is content.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if tl := strings.TrimSpace(l); tl == "" || strings.HasPrefix(tl, "#") || tl == "---" {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// kindsOf lists the kinds of the decoded and the skipped documents ("none" for none).
func kindsOf(objs []runtime.Object, skipped []string) string {
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	kinds = append(kinds, skipped...)
	if len(kinds) == 0 {
		return "none"
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}

// nodeURLs is a repeatable NODE=URL flag.
type nodeURLs map[string]string

func (n *nodeURLs) String() string { return fmt.Sprint(map[string]string(*n)) }

func (n *nodeURLs) Set(v string) error {
	node, url, ok := strings.Cut(v, "=")
	if !ok || node == "" || !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return fmt.Errorf("%q: want NODE=URL, e.g. node1=http://10.0.0.5:10249/metrics", v)
	}
	if *n == nil {
		*n = nodeURLs{}
	}
	if _, dup := (*n)[node]; dup {
		return fmt.Errorf("%q: node %s given twice", v, node)
	}
	(*n)[node] = url
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// errNotFound is returned by readLive when the Deployment does not exist.
var errNotFound = errors.New("not found")
