// Package proc runs fence agents and host-side fencing commands: in their
// own process group, killed as a group when the context ends, with stdin
// fed and stdout/stderr captured up to a bound.
package proc

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

// DefaultMaxOutput bounds each captured stream: a fence agent's list of
// a large PDU is a few KiB; 64 KiB leaves room without letting a
// misbehaving agent grow the daemon.
const DefaultMaxOutput = 64 << 10

// waitDelay is how long to keep reading pipes after the process exited:
// an agent that left a helper holding them must not hang the fencer.
const waitDelay = 250 * time.Millisecond

// Spec describes one process.
type Spec struct {
	Path      string
	Args      []string // after argv[0]
	Env       []string // complete environment; nil means empty
	Stdin     []byte
	MaxOutput int // per stream; 0: DefaultMaxOutput
}

// Result is what Run observed.
type Result struct {
	ExitCode       int // -1 when killed or not started
	Stdout, Stderr []byte
	Truncated      bool
	// Err: the process could not start, or ctx ended first
	// (context.Cause(ctx)).
	Err error
}

// Run runs spec and waits. When ctx ends first the whole process group
// gets SIGKILL: a fence agent that forked ssh or ipmitool must not keep
// talking to the device after the fencer gave up on it.
func Run(ctx context.Context, spec Spec) Result {
	max := spec.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	stdout, stderr := &bounded{max: max}, &bounded{max: max}
	cmd := exec.CommandContext(ctx, spec.Path, spec.Args...)
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(spec.Stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	res := Result{ExitCode: -1, Stdout: stdout.bytes(), Stderr: stderr.bytes(), Truncated: stdout.lost || stderr.lost}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		if cmd.Process != nil {
			// The leader may have exited just before the deadline while
			// its children still run.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		res.ExitCode = -1
		res.Err = context.Cause(ctx)
		return res
	}
	var ee *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay), errors.As(err, &ee):
	default:
		res.Err = fmt.Errorf("run %s: %w", spec.Path, err)
	}
	return res
}

// bounded keeps the first max bytes and reports full writes, so the
// process never sees EPIPE because it talks too much.
type bounded struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	lost bool
}

func (b *bounded) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	if room < len(p) {
		b.lost = true
	}
	return len(p), nil
}

func (b *bounded) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
