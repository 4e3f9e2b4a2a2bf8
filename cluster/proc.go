package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startProc starts a long-running component detached from the caller (own session, output to its log
// file) and records its PID. wrap, if any, runs first and execs the component (nsenter, unshare): the
// PID is the component's, and the PID file names the component's executable, argv[0]. The process
// outlives the command that started it; Down stops it by PID.
func startProc(p paths, name string, wrap, argv []string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(p.log(name)), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(p.log(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	full := append(append([]string{}, wrap...), argv...)
	fmt.Fprintf(logf, "\n=== %s starting: %s\n", time.Now().Format(time.RFC3339), strings.Join(full, " "))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process still runs, so a crash shows as "not running".
	go func() { _ = cmd.Wait() }()
	if err := writeFile(p.pid(name), []byte(strconv.Itoa(pid)+"\n"+argv[0]+"\n"), 0o644); err != nil {
		return pid, err
	}
	return pid, nil
}

// procAlive returns the recorded PID of a component just started and whether a process still runs
// there. Unlike readPID it does not require the executable to match yet: a wrapper may still be on its
// way to exec the component.
func procAlive(p paths, name string) (int, bool) {
	data, err := os.ReadFile(p.pid(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(splitLines(string(data))[0]))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processRuns(pid, "")
}

// readPID returns the recorded PID of a component and whether that process is still the component
// (its executable matches): a PID reused by another process after a crash or reboot is never signalled.
func readPID(p paths, name string) (int, bool) {
	data, err := os.ReadFile(p.pid(name))
	if err != nil {
		return 0, false
	}
	lines := splitLines(string(data))
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, false
	}
	exe := ""
	if len(lines) > 1 {
		exe = lines[1]
	}
	return pid, processRuns(pid, exe)
}

// processRuns reports whether pid is alive (not a zombie) and, when exe is given, whether its command
// line starts with exe. Liveness comes from /proc/PID/stat: a process in the middle of execve (slow on a
// cold page cache) has an empty command line for a moment, and is alive all the same. Its executable
// cannot be told then, so a check for exe says no: a process that cannot be identified is never
// signalled.
func processRuns(pid int, exe string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || !statAlive(string(stat)) {
		return false
	}
	if exe == "" {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return false
	}
	argv0 := strings.SplitN(string(cmdline), "\x00", 2)[0]
	return argv0 == exe || strings.HasSuffix(argv0, "/"+lastPart(exe))
}

// midExec reports whether pid is alive with an empty command line: a process in the middle of execve.
func midExec(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && len(cmdline) == 0 && processRuns(pid, "")
}

// statAlive reads the state of a /proc/PID/stat line (the field after the command name in parentheses,
// which may itself hold spaces and parentheses): Z (zombie) and X (dead) are not alive.
func statAlive(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

func lastPart(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// stopProc sends SIGTERM, waits up to grace, then SIGKILL; it removes the PID file.
func stopProc(p paths, name string, grace time.Duration) {
	pid, ok := readPID(p, name)
	if !ok && pid > 0 && midExec(pid) {
		// Started a moment ago and still in execve: wait for it to show what it is.
		for i := 0; i < 40 && !ok && midExec(pid); i++ {
			time.Sleep(50 * time.Millisecond)
			pid, ok = readPID(p, name)
		}
	}
	if ok {
		killWait(pid, grace)
	}
	_ = os.Remove(p.pid(name))
}

func killWait(pid int, grace time.Duration) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !processRuns(pid, "") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50 && processRuns(pid, ""); i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// findProcs returns the PIDs whose command line contains every one of the given substrings.
func findProcs(substrings ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		s := strings.ReplaceAll(string(cmdline), "\x00", " ")
		match := true
		for _, sub := range substrings {
			if !strings.Contains(s, sub) {
				match = false
				break
			}
		}
		if match {
			out = append(out, pid)
		}
	}
	return out
}
