package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
func fields(s string) []string     { return strings.Fields(s) }

// CmdError is the error of a command that failed: what ran, what it printed and how it ended. Callers
// inspect it with errors.As (for example ExitCode, or Output for a known message) instead of matching the
// error's text.
type CmdError struct {
	Args     []string // the command and its arguments
	Output   string   // combined stdout and stderr
	ExitCode int      // -1 when it did not run or was killed by a signal
	Err      error    // the underlying error from os/exec
}

func (e *CmdError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += "\n" + out
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// run runs a command and returns its combined output; a failure is a *CmdError.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		code := -1
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		return out.String(), &CmdError{Args: append([]string{name}, args...), Output: out.String(), ExitCode: code, Err: err}
	}
	return out.String(), nil
}

// runIn runs a command in a network namespace ("" = the host's).
func runIn(ctx context.Context, netns, name string, args ...string) (string, error) {
	if netns == "" {
		return run(ctx, name, args...)
	}
	return run(ctx, "nsenter", append([]string{"--net=/run/netns/" + netns, name}, args...)...)
}

// Poll calls cond every interval until it returns true or the timeout passes; the error names the
// last reason cond gave.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := splitLines(string(data))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
