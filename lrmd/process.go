package lrmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	cmd := agentCmd(ctx, spec, 0, stdout, stderr)
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	err := cmd.Run()
	pgid := -1
	if cmd.Process != nil {
		pgid = cmd.Process.Pid
	}
	return procResult(ctx, cmd, pgid, err, stdout, stderr)
}

// agentCmd is the command of an agent process: spec's path, arguments,
// directory and environment (an empty one rather than the daemon's), in
// process group pgid (0: a new group the agent leads), which ctx's end
// kills whole (agents that forked helpers must not leave them running).
func agentCmd(ctx context.Context, spec ProcSpec, pgid int, stdout, stderr io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, spec.Path, spec.Args...)
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // never leak the daemon's environment by accident
	}
	cmd.Dir = spec.Dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	cmd.Cancel = func() error {
		// Negative pid: the whole process group.
		g := pgid
		if g == 0 {
			g = cmd.Process.Pid // the group the agent leads
		}
		return syscall.Kill(-g, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeDrainDelay
	return cmd
}

// procResult reads what a finished cmd left: exit status, the bounded
// output, and why it ended when ctx (the operation's) is done; pgid is
// the process group to kill then (-1: none was started).
func procResult(ctx context.Context, cmd *exec.Cmd, pgid int, err error, stdout, stderr *boundedBuffer) ProcResult {
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
		if pgid > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
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
		res.Err = fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	return res
}

// Started is an agent process started before its input is known. It runs
// up to its first read of stdin (for a Python fence agent: the
// interpreter's start and its imports, 70–200 ms, most of what one run
// costs) while nothing waits for it; Run then gives it its stdin and
// waits as RunProcess does. An agent acts only on what it reads, so
// starting it early changes when it runs, not what it does.
//
// It must never run without its request: an agent that reads an empty
// stdin runs its default action (fencing.py's is reboot). Its stdin would
// reach end of file the moment ringd dies, so a guard holds a second
// write end of that pipe: a /bin/sh started first, leader of the process
// group the agent joins, that waits on a pipe from ringd. Run tells it
// "go" and it exits (the agent then sees end of file when Run closes its
// own end); when ringd dies first, its read ends without "go" and it
// kills the group, agent first, before its own write end closes. Either
// order of deaths is therefore safe, with no reliance on signals from
// the kernel (Pdeathsig fires after the pipe closed, and per thread).
//
// Run and Kill may be called from any goroutine; Run at most once.
type Started struct {
	cmd            *exec.Cmd
	guard          *exec.Cmd
	pgid           int
	stdin, goPipe  *os.File
	stdout, stderr *boundedBuffer
	cancel         context.CancelFunc
	done           chan struct{} // closed when the agent's Wait returned
	guardDone      chan struct{}
	waitErr        error
}

// guardScript is the guard's program: fd 3 is the pipe from ringd, fd 4
// the extra write end of the agent's stdin, which it only holds.
const guardScript = `read -r x <&3 && [ "$x" = go ] && exit 0; kill -KILL 0`

// StartProcess starts spec (its Stdin is ignored: Run supplies it) in a
// process group of its own with its guard.
func StartProcess(spec ProcSpec) (st *Started, err error) {
	max := spec.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			_ = f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			closers = append(closers, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	goR, goW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	guard := exec.Command("/bin/sh", "-c", guardScript)
	guard.Env = []string{"PATH=/usr/bin:/bin"}
	guard.ExtraFiles = []*os.File{goR, inW}
	guard.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := guard.Start(); err != nil {
		return nil, fmt.Errorf("start %s: guard: %w", spec.Path, err)
	}
	pgid := guard.Process.Pid
	s := &Started{guard: guard, pgid: pgid, stdout: &boundedBuffer{max: max}, stderr: &boundedBuffer{max: max},
		done: make(chan struct{}), guardDone: make(chan struct{})}
	go func() {
		_ = guard.Wait()
		close(s.guardDone)
	}()
	// The agent lives until Run's ctx or Kill ends it: its own context is
	// cancelled by either, which kills the group (cmd.Cancel).
	pctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cmd := agentCmd(pctx, spec, pgid, s.stdout, s.stderr)
	cmd.Stdin = inR
	if err := cmd.Start(); err != nil {
		cancel()
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.guardDone
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	// Ours to keep: the agent's stdin and the guard's "go" pipe. The
	// other ends now live in the children only.
	closers = []*os.File{inR, goR}
	s.cmd, s.stdin, s.goPipe = cmd, inW, goW
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Exited reports whether the agent ended before Run (it crashed at start,
// or was killed): it can no longer take a request.
func (s *Started) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Run lets the guard go, writes stdin, closes it, and waits for the
// agent; when ctx ends first the whole process group is killed and Err is
// context.Cause(ctx), as with RunProcess.
func (s *Started) Run(ctx context.Context, stdin []byte) ProcResult {
	// A guard that is already gone (killed by hand) no longer holds the
	// agent's stdin: EPIPE here changes nothing.
	_, _ = s.goPipe.Write([]byte("go\n"))
	_ = s.goPipe.Close()
	go func() {
		// The pipe holds 64 KiB: an agent that never reads must not
		// block Run, which also waits for ctx.
		_, _ = s.stdin.Write(stdin)
		_ = s.stdin.Close()
	}()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	s.cancel()
	<-s.guardDone
	return procResult(ctx, s.cmd, s.pgid, s.waitErr, s.stdout, s.stderr)
}

// Kill ends an agent that will not be used, with its guard and group,
// and waits for them.
func (s *Started) Kill() {
	s.cancel()
	_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	<-s.done
	<-s.guardDone
	_ = s.goPipe.Close()
	_ = s.stdin.Close()
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
