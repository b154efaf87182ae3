package lrmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput bounds each captured stream of an agent. IPaddr2's
// meta-data is about 12 KiB; 256 KiB leaves ample room without letting a
// chatty agent grow the daemon.
const DefaultMaxOutput = 256 << 10

// pipeDrainDelay is how long to keep reading an agent's stdout/stderr after
// the agent itself exited. A start action that launches a daemon often
// leaves the daemon holding the inherited pipes; waiting for EOF would hang
// the operation until the daemon exits.
const pipeDrainDelay = 250 * time.Millisecond

// ProcSpec describes one agent process.
type ProcSpec struct {
	Path      string
	Args      []string // after argv[0]
	Env       []string // the complete environment
	Dir       string
	Stdin     []byte // fed to the process (fence agents read key=value lines)
	MaxOutput int    // per stream; 0 means DefaultMaxOutput
}

// ProcResult is what RunProcess observed.
type ProcResult struct {
	ExitCode       int // -1 when killed by a signal or not started
	Signal         syscall.Signal
	Stdout, Stderr []byte
	Truncated      bool
	// Err is set when the process could not be started, or ctx ended
	// (context.Cause(ctx) is returned then, so callers can tell a timeout
	// from a cancellation).
	Err error
}

// RunProcess runs an agent in its own process group and waits for it.
// When ctx is done first, the whole group gets SIGKILL (pacemaker's
// behaviour on timeout: an agent that forked helpers must not leave them
// running) and Err is context.Cause(ctx). After a normal exit the group is
// left alone: start actions legitimately leave daemons behind.
func RunProcess(ctx context.Context, spec ProcSpec) ProcResult {
	max := spec.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	stdout := &boundedBuffer{max: max}
	stderr := &boundedBuffer{max: max}
	cmd := exec.CommandContext(ctx, spec.Path, spec.Args...)
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // never leak the daemon's environment by accident
	}
	cmd.Dir = spec.Dir
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the whole process group the agent leads.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeDrainDelay
	err := cmd.Run()
	res := ProcResult{ExitCode: -1, Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Truncated: stdout.truncated() || stderr.truncated()}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal()
		}
	}
	if ctx.Err() != nil {
		// Kill again: the leader may have exited just before the deadline
		// while its children were still running.
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		res.Err = context.Cause(ctx)
		return res
	}
	var ee *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay), errors.As(err, &ee):
		// Exit status is in ProcessState; a lingering daemon holding the
		// pipes (ErrWaitDelay) is not the agent's failure.
	default:
		res.Err = fmt.Errorf("run %s: %w", spec.Path, err)
	}
	return res
}

// boundedBuffer keeps the first max bytes written and silently discards
// the rest (reporting full writes so the agent never sees EPIPE).
type boundedBuffer struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	lost int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.lost += len(p) - room
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

func (b *boundedBuffer) truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost > 0
}

// Output is a bounded message buffer for builtin agents: they report what
// they did the way a script prints to stdout.
type Output struct {
	b boundedBuffer
}

// Printf appends a line.
func (o *Output) Printf(format string, args ...any) {
	if o.b.max == 0 {
		o.b.max = DefaultMaxOutput
	}
	s := fmt.Sprintf(format, args...)
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	_, _ = o.b.Write([]byte(s))
}

// String returns everything printed so far.
func (o *Output) String() string { return string(o.b.Bytes()) }

// Result builds a Result carrying the output.
func (o *Output) Result(rc RC, reason string) Result {
	return Result{RC: rc, Status: StatusDone, Reason: reason, Stdout: o.String(), Truncated: o.b.truncated()}
}
