package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// The egress guard: before any component starts, packets to the cluster's address ranges that would
// leave through a real interface (un-translated traffic to a ClusterIP before kube-proxy wrote its rules,
// or to a pod IP no node owns) are rejected on this machine. Its chain is jumped to first from OUTPUT
// and FORWARD, and removed by Down.
const guardChain = "GOSVC-EGRESS-GUARD"

// guardedCIDRs never leave this machine.
var guardedCIDRs = []string{ServiceCIDR, ClusterCIDR, NodeNetCIDR}

// uplinks are the interfaces packets could leave the machine through: every interface with an
// address, except loopback and the cluster's own bridges and veths.
func uplinks() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Name == "cni0" || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil || len(addrs) == 0 {
			continue
		}
		out = append(out, i.Name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no uplink interface found")
	}
	return out, nil
}

// installGuard (re)creates the guard:
//   - filter OUTPUT and FORWARD: a packet to a cluster range that routing sends out of an uplink and that
//     kube-proxy did not translate (conntrack state not DNAT) is rejected at once: TCP with a reset
//     (connection refused), anything else with net-unreachable. For local traffic the OUTPUT hooks
//     still see the interface chosen before kube-proxy's DNAT, hence the conntrack test.
//   - mangle POSTROUTING: the backstop, where the interface is the real one after every NAT: any packet
//     to a cluster range still about to leave through an uplink is dropped.
func installGuard(ctx context.Context) error {
	links, err := uplinks()
	if err != nil {
		return err
	}
	comment := []string{"-m", "comment", "--comment", "go-service: cluster traffic stays local"}
	for _, table := range []string{"filter", "mangle"} {
		if _, err := run(ctx, "iptables", "-w", "-t", table, "-S", guardChain); err != nil { // not there yet
			if _, err := run(ctx, "iptables", "-w", "-t", table, "-N", guardChain); err != nil {
				return err
			}
		}
		if _, err := run(ctx, "iptables", "-w", "-t", table, "-F", guardChain); err != nil {
			return err
		}
	}
	for _, link := range links {
		for _, cidr := range guardedCIDRs {
			match := append([]string{"-o", link, "-d", cidr}, comment...)
			untranslated := append(append([]string{}, match...), "-m", "conntrack", "!", "--ctstate", "DNAT")
			rules := [][]string{
				append(append([]string{"-t", "filter", "-A", guardChain}, untranslated...), "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"),
				append(append([]string{"-t", "filter", "-A", guardChain}, untranslated...), "-j", "REJECT", "--reject-with", "icmp-net-unreachable"),
				append(append([]string{"-t", "mangle", "-A", guardChain}, match...), "-j", "DROP"),
			}
			for _, r := range rules {
				if _, err := run(ctx, "iptables", append([]string{"-w"}, r...)...); err != nil {
					return err
				}
			}
		}
	}
	for _, hook := range guardHooks {
		for {
			if _, err := run(ctx, "iptables", "-w", "-t", hook[0], "-D", hook[1], "-j", guardChain); err != nil {
				break
			}
		}
		if _, err := run(ctx, "iptables", "-w", "-t", hook[0], "-I", hook[1], "1", "-j", guardChain); err != nil {
			return err
		}
	}
	return nil
}

// guardHooks are the (table, chain) pairs that jump to the guard first.
var guardHooks = [][2]string{{"filter", "OUTPUT"}, {"filter", "FORWARD"}, {"mangle", "POSTROUTING"}}

// removeGuard deletes the guard chains and their jumps.
func removeGuard(ctx context.Context) {
	for _, hook := range guardHooks {
		for {
			if _, err := run(ctx, "iptables", "-w", "-t", hook[0], "-D", hook[1], "-j", guardChain); err != nil {
				break
			}
		}
	}
	for _, table := range []string{"filter", "mangle"} {
		_, _ = run(ctx, "iptables", "-w", "-t", table, "-F", guardChain)
		_, _ = run(ctx, "iptables", "-w", "-t", table, "-X", guardChain)
	}
}

// GuardRejected returns how many packets the guard has rejected so far (for tests and status).
func GuardRejected(ctx context.Context) (int64, error) {
	out, err := run(ctx, "iptables", "-w", "-t", "filter", "-L", guardChain, "-v", "-x", "-n")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range splitLines(out)[2:] {
		f := fields(l)
		if len(f) > 0 {
			var n int64
			fmt.Sscan(f[0], &n)
			total += n
		}
	}
	return total, nil
}
