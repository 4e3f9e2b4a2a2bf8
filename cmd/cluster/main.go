// Command cluster manages the project's local Kubernetes cluster (see package cluster).
//
//	cluster up [--nodes N] [--proxy-min-sync-period 1s]   start it, or keep a healthy one (idempotent)
//	cluster down                                        stop it and remove everything it created
//	cluster status                                      components, nodes, health (exit 1 if unhealthy)
//	cluster kubeconfig                                  print the admin kubeconfig path
//	cluster build                                       build the components and images (cached; no root)
//	cluster soak [--cycles 10]                          up 1 node, up 2 nodes, serve on each, down; N times
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-service/go-service/cluster"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var o cluster.Options
	fs.IntVar(&o.Nodes, "nodes", 1, "number of nodes (node 1 on the host, the others in network namespaces)")
	fs.StringVar(&o.ProxyMinSyncPeriod, "proxy-min-sync-period", "1s", "kube-proxy iptables minSyncPeriod (endpoint propagation lag)")
	fs.StringVar(&o.StateDir, "state-dir", cluster.DefaultStateDir, "state directory")
	cycles := fs.Int("cycles", 10, "soak: number of cycles")
	_ = fs.Parse(os.Args[2:])

	switch os.Args[1] {
	case "up":
		c, err := cluster.Up(ctx, o)
		if err != nil {
			fail(err)
		}
		fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	case "down":
		if err := cluster.Down(ctx, o); err != nil {
			fail(err)
		}
	case "status":
		s, ok := cluster.Status(ctx, o)
		fmt.Print(s)
		if !ok {
			os.Exit(1)
		}
	case "kubeconfig":
		fmt.Println(cluster.DefaultKubeconfig)
	case "build":
		if err := cluster.Build(ctx, o); err != nil {
			fail(err)
		}
	case "soak":
		res, err := cluster.Soak(ctx, o, *cycles, os.Stdout)
		if err != nil {
			fail(err)
		}
		if res.Failures() > 0 || res.ResidueItems() > 0 {
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cluster {up [--nodes N] [--proxy-min-sync-period D]|down|status|kubeconfig|build|soak [--cycles N]}")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cluster:", err)
	os.Exit(1)
}
