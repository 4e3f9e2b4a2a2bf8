//go:build !service_only

package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/go-service/go-service/check"
)

func runCheck(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return check.Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}
