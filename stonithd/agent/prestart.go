package agent

import (
	"context"
	"os"
	"slices"
	"syscall"
	"time"

	"ringmaster/lrmd"
	"ringmaster/stonithd"
)

// Pre-started agents.
//
// A Debian fence agent is a Python program: before it reads its request it
// starts the interpreter and imports fencing.py with its dependencies,
// 70–110 ms on an idle machine and 150–220 ms on a loaded one, while the
// fencing itself (fence_dummy's off and on) takes 15–25 ms. Fencing is on
// the failover path (recovery waits for it), so the Registry keeps one
// process of each configured fence-agents executable started and waiting
// for its stdin (KeepWarm); a request writes its key=value lines to that
// process instead of starting one, and a new spare is started behind it.
// The agent sees exactly the stdin it would otherwise get and does nothing
// before reading it, so only the moment the interpreter starts changes.
//
// A spare is not used, and is replaced, when it exited on its own (a
// broken installation: the request then runs a fresh process and reports
// what that one says), or when the executable changed on disk since it
// started (a package upgrade). Builtin agents run in ringd and need none.
//
//	spare \ event | KeepWarm lists it | KeepWarm drops it | Exec of its agent           | Close
//	--------------+-------------------+-------------------+-----------------------------+------
//	none          | start one         | -                 | run a fresh process; start  | -
//	              |                   |                   | one after (if listed)       |
//	waiting       | keep              | kill              | use it; start one after     | kill
//	exited/stale  | replace           | discard           | discard; as none            | -

// spare is a started agent waiting for its request.
type spare struct {
	proc *lrmd.Started
	file fileStamp
}

// fileStamp identifies an executable's contents well enough to notice a
// replacement: package managers write a new file (new inode) or rewrite
// it (new mtime or size).
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stampOf(path string) (fileStamp, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	fs := fileStamp{size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fs.ino = sys.Ino
	}
	return fs, true
}

// KeepWarm sets the fence-agents executables to keep one pre-started
// process of (the agents of the configured devices): it starts what is
// missing and kills the spares of agents no longer listed. Builtin
// agents and names that are not fence_* executables in Dir are ignored.
// It does nothing when Config.Prestart is off.
func (r *Registry) KeepWarm(agents []string) {
	if !r.cfg.Prestart {
		return
	}
	want := map[string]bool{}
	for _, a := range agents {
		if p, err := r.path(a); err == nil {
			want[p] = true
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.warm = want
	var drop []*spare
	for p, s := range r.spares {
		if !want[p] {
			drop = append(drop, s)
			delete(r.spares, p)
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	r.mu.Unlock()
	for _, s := range drop {
		s.proc.Kill()
	}
	slices.Sort(paths)
	for _, p := range paths {
		r.refill(p)
	}
}

// usable reports whether s can still serve a request for path: it has
// not exited and the executable is the one it started from.
func (s *spare) usable(path string) bool {
	st, ok := stampOf(path)
	return ok && st == s.file && !s.proc.Exited()
}

// refill starts a spare of path when it is wanted and none is waiting
// (or the one waiting can no longer be used). The process starts outside
// mu, so that a request taking another agent's spare (take) never waits
// for a fork.
func (r *Registry) refill(path string) {
	r.mu.Lock()
	if r.closed || !r.warm[path] || r.starting[path] {
		r.mu.Unlock()
		return
	}
	s := r.spares[path]
	if s != nil && s.usable(path) {
		r.mu.Unlock()
		return
	}
	delete(r.spares, path)
	r.starting[path] = true
	r.mu.Unlock()
	if s != nil {
		s.proc.Kill()
	}
	var p *lrmd.Started
	st, ok := stampOf(path)
	if ok {
		var err error
		if p, err = lrmd.StartProcess(lrmd.ProcSpec{Path: path, Env: r.cfg.Env, MaxOutput: r.cfg.MaxOutput}); err != nil {
			p = nil // the request runs a fresh process, which reports the error
		}
	}
	r.mu.Lock()
	delete(r.starting, path)
	keep := p != nil && !r.closed && r.warm[path] && r.spares[path] == nil
	if keep {
		r.spares[path] = &spare{proc: p, file: st}
	}
	r.mu.Unlock()
	if p != nil && !keep {
		p.Kill()
	}
}

// take removes path's spare for a request: nil when there is none, or
// when it exited or its executable changed (it is killed then).
func (r *Registry) take(path string) *lrmd.Started {
	r.mu.Lock()
	s := r.spares[path]
	delete(r.spares, path)
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	if !s.usable(path) {
		s.proc.Kill()
		return nil
	}
	return s.proc
}

// runAgent runs a fence-agents executable with stdin: on its spare when
// one waits, else as a fresh process; a new spare is started afterwards
// (in the background: the result must not wait for a fork).
func (r *Registry) runAgent(ctx context.Context, path string, stdin []byte) stonithd.CommandResult {
	var res lrmd.ProcResult
	if p := r.take(path); p != nil {
		res = p.Run(ctx, stdin)
	} else {
		res = lrmd.RunProcess(ctx, lrmd.ProcSpec{Path: path, Env: r.cfg.Env, Stdin: stdin, MaxOutput: r.cfg.MaxOutput})
	}
	r.mu.Lock()
	if r.cfg.Prestart && !r.closed {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.refill(path)
		}()
	}
	r.mu.Unlock()
	return result(res)
}

// Close kills the spares; later KeepWarm and refills start none. Exec
// still runs fresh processes.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait() // refills in flight; none starts after closed
	r.mu.Lock()
	spares := r.spares
	r.spares = map[string]*spare{}
	r.mu.Unlock()
	for _, s := range spares {
		s.proc.Kill()
	}
}
