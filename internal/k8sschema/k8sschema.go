// Package k8sschema turns Kubernetes OpenAPI v2 definitions into JSON Schema (draft-07) definitions
// for the chart's values schema, so that the Kubernetes objects the chart passes through (security
// contexts, env, volumes, affinity, ...) are checked at render with the API's own field names and types.
//
// The conversion is strict where the API server is: objects with named properties refuse unknown
// properties (a typo is an error, not a field Helm drops with a warning), int32 fields are bounded,
// enums are kept. Quantities refer to the chart's own quantity definition (a number or a quantity
// string) and int-or-string fields accept either.
package k8sschema

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Prefix starts the name of every generated definition: the REST-friendly OpenAPI name, as in
// io.k8s.api.core.v1.SecurityContext or io.k8s.sigs.gateway-api.apis.v1.ParentReference.
const Prefix = "io.k8s."

const (
	quantity    = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	intOrString = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
)

// Options tune the conversion.
type Options struct {
	// QuantityRef is the $ref written for resource.Quantity (the chart's own definition).
	QuantityRef string
}

// MissingError reports a definition that a root or a reference names and the sources do not hold.
type MissingError struct {
	Name       string // the definition's REST-friendly name
	ReferredBy string // the definition that refers to it; empty for a root
}

func (e *MissingError) Error() string {
	if e.ReferredBy == "" {
		return fmt.Sprintf("k8sschema: no OpenAPI definition %q", e.Name)
	}
	return fmt.Sprintf("k8sschema: no OpenAPI definition %q (referred to by %s)", e.Name, e.ReferredBy)
}

// Generate converts the roots and every definition they refer to, transitively, from the OpenAPI
// v2 definitions in defs (keyed by REST-friendly name, with refs of the form #/definitions/NAME) into
// JSON Schema definitions keyed by the same names, with refs of the form #/$defs/NAME.
func Generate(defs map[string]any, roots []string, opt Options) (map[string]any, error) {
	out := map[string]any{}
	queue := append([]string(nil), roots...)
	from := map[string]string{}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := out[name]; done {
			continue
		}
		def, ok := defs[name].(map[string]any)
		if !ok {
			return nil, &MissingError{Name: name, ReferredBy: from[name]}
		}
		c := converter{opt: opt, refs: map[string]bool{}}
		out[name] = c.convert(def)
		refs := make([]string, 0, len(c.refs))
		for r := range c.refs {
			refs = append(refs, r)
		}
		sort.Strings(refs)
		for _, r := range refs {
			if _, seen := from[r]; !seen {
				from[r] = name
			}
			queue = append(queue, r)
		}
	}
	return out, nil
}

type converter struct {
	opt  Options
	refs map[string]bool
}

// convert returns the JSON Schema for one OpenAPI v2 schema node.
// A $ref's sibling keys (a description) are dropped: the definition carries its own.
func (c *converter) convert(n map[string]any) map[string]any {
	out := map[string]any{}
	if ref, ok := n["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		switch name {
		case quantity:
			out["$ref"] = c.opt.QuantityRef
		case intOrString:
			intOrStringSchema(out)
		default:
			c.refs[name] = true
			out["$ref"] = "#/$defs/" + name
		}
		return out
	}
	if d, ok := n["description"].(string); ok && d != "" {
		out["description"] = summary(d)
	}
	if t, ok := n["type"]; ok {
		out["type"] = t
	}
	for _, k := range []string{"enum", "required", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "exclusiveMinimum", "exclusiveMaximum"} {
		if v, ok := n[k]; ok {
			out[k] = v
		}
	}
	if n["type"] == "integer" && n["format"] == "int32" {
		if _, ok := out["minimum"]; !ok {
			out["minimum"] = int64(-1 << 31)
		}
		if _, ok := out["maximum"]; !ok {
			out["maximum"] = int64(1<<31 - 1)
		}
	}
	if n["format"] == "int-or-string" {
		intOrStringSchema(out)
	}
	if props, ok := n["properties"].(map[string]any); ok {
		p := map[string]any{}
		for k, v := range props {
			if m, ok := v.(map[string]any); ok {
				p[k] = c.convert(m)
			}
		}
		out["properties"] = p
	}
	if items, ok := n["items"].(map[string]any); ok {
		out["items"] = c.convert(items)
	}
	switch ap := n["additionalProperties"].(type) {
	case map[string]any:
		out["additionalProperties"] = c.convert(ap)
	case bool:
		out["additionalProperties"] = ap
	default:
		if _, named := out["properties"]; named {
			out["additionalProperties"] = false
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := n[k].([]any); ok {
			conv := make([]any, 0, len(list))
			for _, v := range list {
				if m, ok := v.(map[string]any); ok {
					conv = append(conv, c.convert(m))
				}
			}
			out[k] = conv
		}
	}
	return out
}

// summary is the first paragraph of an OpenAPI description, without the generated list of enum values.
func summary(d string) string {
	if i := strings.Index(d, "\n\n"); i >= 0 {
		d = d[:i]
	}
	return strings.TrimSpace(d)
}

// Overlay adds keywords the OpenAPI definitions lack to generated definitions: rules[definition]
// [property] are the JSON Schema keywords to set on that property (an enum, a pattern, bounds), and
// rules[definition][""] those to set on the definition itself (e.g. required). A definition or property
// that is not there is an error, so an overlay cannot outlive the API it fixes. A "required" list is
// added to the definition's own.
func Overlay(defs map[string]any, rules map[string]map[string]map[string]any) error {
	for def, props := range rules {
		d, ok := defs[def].(map[string]any)
		if !ok {
			return &MissingError{Name: def, ReferredBy: "an overlay"}
		}
		p, _ := d["properties"].(map[string]any)
		for prop, keywords := range props {
			target := d
			if prop != "" {
				s, ok := p[prop].(map[string]any)
				if !ok {
					return fmt.Errorf("k8sschema: overlay: %s has no property %q", def, prop)
				}
				target = s
			}
			for k, v := range keywords {
				if k == "required" {
					have, _ := target["required"].([]any)
					for _, r := range v.([]any) {
						if _, ok := p[r.(string)]; !ok {
							return fmt.Errorf("k8sschema: overlay: %s has no property %q to require", def, r)
						}
						if !slices.Contains(have, r) {
							have = append(have, r)
						}
					}
					target["required"] = have
					continue
				}
				target[k] = v
			}
		}
	}
	return nil
}

// intOrStringSchema makes out an int-or-string: a string, or an integer within int32 (IntOrString's
// IntVal; the bounds apply to numbers only).
func intOrStringSchema(out map[string]any) {
	out["type"] = []any{"integer", "string"}
	out["minimum"] = int64(-1 << 31)
	out["maximum"] = int64(1<<31 - 1)
}
