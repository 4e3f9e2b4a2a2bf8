package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Memory reports the cluster's memory use: the proportional set size (PSS, shared pages split fairly)
// of each component and containerd shim, and what the pods' cgroups use. PSS is the honest figure here:
// every component is the same binary, whose pages RSS would count once per process.
func Memory(o Options) (string, int64, error) {
	if err := o.defaults(); err != nil {
		return "", 0, err
	}
	p := paths{o.StateDir}
	st, err := readState(p)
	if err != nil {
		return "", 0, fmt.Errorf("no cluster: %w", err)
	}
	type row struct {
		name string
		kib  int64
	}
	var rows []row
	var total int64
	for _, comp := range components(st.Nodes) {
		if pid, ok := readPID(p, comp); ok {
			k := pssKiB(pid)
			rows = append(rows, row{comp, k})
			total += k
		}
	}
	var shims int64
	for _, pid := range findProcs("containerd-shim-runc-v2", "-address /run/containerd") {
		shims += pssKiB(pid)
	}
	rows = append(rows, row{"containerd shims", shims})
	total += shims
	var pods int64
	for _, root := range append([]string{"/sys/fs/cgroup/memory/kubepods"}, nodeCgroupRoots(st.Nodes)...) {
		if data, err := os.ReadFile(filepath.Join(root, "memory.usage_in_bytes")); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			pods += n / 1024
		}
	}
	rows = append(rows, row{"pods (cgroup usage)", pods})
	total += pods
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].kib > rows[j].kib })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-26s %7.1f MiB\n", r.name, float64(r.kib)/1024)
	}
	fmt.Fprintf(&b, "  %-26s %7.1f MiB (%d node(s))\n", "total", float64(total)/1024, len(st.Nodes))
	return b.String(), total * 1024, nil
}

func nodeCgroupRoots(nodes []Node) []string {
	var out []string
	for _, n := range nodes[1:] {
		out = append(out, "/sys/fs/cgroup/memory/"+n.Name)
	}
	return out
}

// pssKiB reads a process's PSS from /proc/<pid>/smaps_rollup.
func pssKiB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range splitLines(string(data)) {
		if f := fields(l); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
