package chart_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/go-service/go-service/test/render"
)

// refusalsFile holds the bad-values table: values as a user writes them in a values file, and the exact
// problems the render reports for them (or, for choices that are allowed but risky, the exact NOTES
// warnings). The chart README's "Values the chart refuses" section is generated from it.
const refusalsFile = "testdata/refusals.yaml"

// refusal is one case of the table.
type refusal struct {
	Name string `json:"name"`
	// Kube is the cluster version to render for (default render.DefaultKubeVersion).
	Kube string `json:"kube,omitempty"`
	// Values are read the way Helm reads a values file (numbers become float64, as in helm -f).
	Values map[string]any `json:"values"`
	// Refused is the exact list of problems: the chart's checks' lines after "go-service: invalid
	// values:", or the schema's lines after "go-service:".
	Refused string `json:"refused,omitempty"`
	// Warns is the exact NOTES warning block of a render that is allowed but risky.
	Warns string `json:"warns,omitempty"`
}

// Header lines that precede the problems in the two kinds of refusal.
const (
	checksHeader = "go-service: invalid values:\n"
	schemaHeader = "values don't meet the specifications of the schema(s) in the following chart(s):\ngo-service:\n"
)

// problems splits a render error into its kind and the exact problem lines, each starting with "- " (the
// checks' two-space indent is removed, so both kinds read alike). A refusal that is neither the chart's
// checks nor the schema (a template that broke on the values) returns kind "".
func problems(err error) (kind, lines string) {
	msg := err.Error()
	if i := strings.Index(msg, checksHeader); i >= 0 {
		ls := strings.Split(strings.TrimSuffix(msg[i+len(checksHeader):], "\n"), "\n")
		for j := range ls {
			ls[j] = strings.TrimPrefix(ls[j], "  ")
		}
		return "check", strings.Join(ls, "\n") + "\n"
	}
	if i := strings.Index(msg, schemaHeader); i >= 0 {
		return "schema", msg[i+len(schemaHeader):]
	}
	return "", msg
}

// notesWarnings is the WARNINGS block of NOTES.txt (up to the next blank line), or "" when there is none.
func notesWarnings(notes string) string {
	i := strings.Index(notes, "WARNINGS")
	if i < 0 {
		return ""
	}
	block, _, _ := strings.Cut(notes[i:], "\n\n")
	return strings.TrimSpace(block) + "\n"
}

func loadRefusals(tb testing.TB) ([]refusal, []byte) {
	tb.Helper()
	data, err := os.ReadFile(refusalsFile)
	require.NoError(tb, err)
	var cases []refusal
	require.NoError(tb, yaml.UnmarshalStrict(data, &cases), refusalsFile)
	return cases, data
}

// Every bad value is refused before anything reaches a cluster, with the exact message in the table;
// every risky choice renders with the exact NOTES warning in the table. Nothing renders when a value is
// refused. -update rewrites the messages in the table from the chart (review the diff).
func TestRefusals(t *testing.T) {
	t.Parallel()
	cases, data := loadRefusals(t)
	refused := 0
	names := map[string]bool{}
	got := make([]string, len(cases))
	for i, tc := range cases {
		require.False(t, names[tc.Name], "case names are unique: %q", tc.Name)
		names[tc.Name] = true
		require.True(t, (tc.Refused == "") != (tc.Warns == "") || *update, "case %q: exactly one of refused and warns", tc.Name)
		if tc.Refused != "" || (*update && tc.Warns == "") {
			refused++
		}
		t.Run(tc.Name, func(t *testing.T) {
			res, err := render.Render(render.Options{KubeVersion: tc.Kube, Values: tc.Values})
			if tc.Warns != "" {
				require.NoError(t, err, "a risky choice renders")
				record(t, res)
				got[i] = notesWarnings(res.Notes)
				if !*update {
					assert.Equal(t, tc.Warns, got[i], "the NOTES warnings")
				}
				return
			}
			require.Error(t, err, "values %v must be refused", tc.Values)
			assert.Nil(t, res, "nothing is rendered when a value is refused")
			kind, lines := problems(err)
			require.NotEmpty(t, kind, "refused by a check or the schema, not by a template that broke on the values:\n%v", err)
			got[i] = lines
			if !*update {
				assert.Equal(t, tc.Refused, lines, "the exact problems")
			}
			if kind == "check" {
				for _, l := range strings.Split(strings.TrimSuffix(lines, "\n"), "\n") {
					assert.True(t, strings.HasPrefix(l, "- "), "each problem on its own line: %q", l)
				}
			}
		})
	}
	assert.GreaterOrEqual(t, refused, 150, "the table has at least 150 bad-values cases")
	if *update {
		t.Cleanup(func() { writeRefusals(t, data, cases, got) })
	}
}

// writeRefusals rewrites the refused/warns messages of the table in place, keeping its layout.
func writeRefusals(t *testing.T, data []byte, cases []refusal, got []string) {
	var doc yamlv3.Node
	require.NoError(t, yamlv3.Unmarshal(data, &doc))
	list := doc.Content[0]
	require.Len(t, list.Content, len(cases))
	for i, item := range list.Content {
		key := "refused"
		if cases[i].Warns != "" {
			key = "warns"
		}
		set := false
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == key {
				item.Content[j+1].Value, item.Content[j+1].Style = got[i], yamlv3.LiteralStyle
				set = true
			}
		}
		if !set {
			item.Content = append(item.Content,
				&yamlv3.Node{Kind: yamlv3.ScalarNode, Value: key},
				&yamlv3.Node{Kind: yamlv3.ScalarNode, Value: got[i], Style: yamlv3.LiteralStyle})
		}
	}
	var buf bytes.Buffer
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(&doc))
	require.NoError(t, os.WriteFile(refusalsFile, buf.Bytes(), 0o644))
}

// The chart README's "Values the chart refuses" section is generated from the table: in
// README.md.gotmpl (helm-docs' source) and in README.md. -update rewrites both.
func TestRefusalsDocumented(t *testing.T) {
	t.Parallel()
	cases, data := loadRefusals(t)
	section := refusalsSection(t, cases, data)
	chart, err := render.ChartDir()
	require.NoError(t, err)
	for _, name := range []string{"README.md.gotmpl", "README.md"} {
		path := filepath.Join(chart, name)
		readme, err := os.ReadFile(path)
		require.NoError(t, err)
		begin, end := []byte("<!-- refusals:begin -->\n"), []byte("<!-- refusals:end -->")
		i, j := bytes.Index(readme, begin), bytes.Index(readme, end)
		require.True(t, i >= 0 && j > i, "%s has the refusals:begin and refusals:end markers", name)
		current := string(readme[i+len(begin) : j])
		want := section
		if strings.HasSuffix(name, ".gotmpl") {
			want = strings.ReplaceAll(section, "{{", `{{ "{{" }}`) // helm-docs renders the file as a template
		}
		if *update {
			out := append(append(append([]byte{}, readme[:i+len(begin)]...), want...), readme[j:]...)
			require.NoError(t, os.WriteFile(path, out, 0o644))
			continue
		}
		assert.Equal(t, want, current, "%s: the refusals section is stale: run go test ./test/chart -run TestRefusalsDocumented -update", name)
	}
}

// refusalsSection renders the table as Markdown: the values as a user writes them (read from the file,
// so 1.10 stays 1.10), then the exact message.
func refusalsSection(tb testing.TB, cases []refusal, data []byte) string {
	tb.Helper()
	var doc yamlv3.Node
	require.NoError(tb, yamlv3.Unmarshal(data, &doc))
	items := doc.Content[0].Content
	require.Len(tb, items, len(cases))
	var refused, warns strings.Builder
	nRefused, nWarns := 0, 0
	for i, tc := range cases {
		var values *yamlv3.Node
		for j := 0; j+1 < len(items[i].Content); j += 2 {
			if items[i].Content[j].Value == "values" {
				values = items[i].Content[j+1]
			}
		}
		require.NotNil(tb, values, "case %q has values", tc.Name)
		kube := ""
		if tc.Kube != "" {
			kube = " (Kubernetes " + tc.Kube + ")"
		}
		row := fmt.Sprintf("| %s%s | %s |\n", strings.Join(flatten(values, ""), "<br>"), kube, cell(tc.Refused+tc.Warns))
		if tc.Warns != "" {
			nWarns++
			warns.WriteString(row)
		} else {
			nRefused++
			refused.WriteString(row)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Generated from the render suite's table (`test/chart/testdata/refusals.yaml`), which checks every\n")
	fmt.Fprintf(&b, "message word for word: %d values the chart refuses, each with what `helm install` prints after\n", nRefused)
	fmt.Fprintf(&b, "`go-service: invalid values:` (the chart's checks) or after `go-service:` (the schema), and %d choices\n", nWarns)
	fmt.Fprintf(&b, "it renders with a warning in NOTES.\n\n")
	b.WriteString("<details><summary>Refused values</summary>\n\n| Values | Refused with |\n|---|---|\n")
	b.WriteString(refused.String())
	b.WriteString("\n</details>\n\n<details><summary>Allowed with a warning</summary>\n\n| Values | NOTES |\n|---|---|\n")
	b.WriteString(warns.String())
	b.WriteString("\n</details>\n")
	return b.String()
}

// flatten lists the leaves of a values node as `path: value`, with scalars as written in the file.
func flatten(n *yamlv3.Node, path string) []string {
	switch n.Kind {
	case yamlv3.MappingNode:
		if len(n.Content) == 0 {
			return []string{code(path + ": {}")}
		}
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if strings.ContainsAny(p, "\n\u0085") {
				p = fmt.Sprintf("%q", p)
			}
			if path != "" {
				p = path + "." + p
			}
			out = append(out, flatten(n.Content[i+1], p)...)
		}
		return out
	case yamlv3.SequenceNode:
		if len(n.Content) == 0 {
			return []string{code(path + ": []")}
		}
		var out []string
		for i, c := range n.Content {
			out = append(out, flatten(c, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	v := n.Value
	if n.Tag == "!!null" {
		v = "null"
	} else if n.Style&(yamlv3.DoubleQuotedStyle|yamlv3.SingleQuotedStyle) != 0 || strings.ContainsAny(v, "\n\u0085") {
		v = fmt.Sprintf("%q", v)
	}
	if len(v) > 40 {
		v = fmt.Sprintf("%s… (%d characters)", v[:20], len(v))
	}
	return []string{code(path + ": " + v)}
}

// code is inline code for a table cell.
func code(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }

// cell is a message as table cell text: its lines joined with <br>, without the list dashes.
func cell(msg string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(msg), "\n") {
		if strings.TrimSpace(l) == "WARNINGS:" {
			continue
		}
		l = strings.TrimPrefix(strings.TrimSpace(l), "- ")
		lines = append(lines, l)
	}
	s := strings.Join(lines, "<br>")
	s = strings.NewReplacer("|", `\|`, "<br>", "<br>", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`).Replace(s)
	return strings.ReplaceAll(s, "&lt;br&gt;", "<br>")
}
