//go:build !linux

package load

// procSampler has no /proc to read outside Linux: it names no process.
type procSampler struct{}

func newProcSampler() *procSampler { return &procSampler{} }

func (s *procSampler) sample() []ProcCPU { return nil }
