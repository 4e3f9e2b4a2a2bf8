package render

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// All returns the rendered objects of type T (e.g. *appsv1.Deployment), in render order.
func All[T runtime.Object](r *Result) []T {
	var out []T
	for _, o := range r.Objects {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// One returns the single rendered object of type T and fails the test unless there is exactly one.
func One[T runtime.Object](tb testing.TB, r *Result) T {
	tb.Helper()
	all := All[T](r)
	if len(all) != 1 {
		var zero T
		tb.Fatalf("want exactly one %T, got %d (rendered kinds: %v)", zero, len(all), r.Kinds())
	}
	return all[0]
}

// Named returns the rendered object of type T with the given name.
func Named[T runtime.Object](tb testing.TB, r *Result, name string) T {
	tb.Helper()
	var names []string
	for _, o := range All[T](r) {
		m, err := meta.Accessor(o)
		if err != nil {
			tb.Fatal(err)
		}
		if m.GetName() == name {
			return o
		}
		names = append(names, m.GetName())
	}
	var zero T
	tb.Fatalf("no %T named %q (have %v)", zero, name, names)
	return zero
}

// Has reports whether any object of type T was rendered.
func Has[T runtime.Object](r *Result) bool { return len(All[T](r)) > 0 }

// String describes a result for failure messages.
func (r *Result) String() string {
	return fmt.Sprintf("%d objects %v", len(r.Objects), r.Kinds())
}
