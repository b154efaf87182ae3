// Package ocf runs OCF resource agents: executable scripts under
// OCF_ROOT/resource.d/PROVIDER/TYPE, called with the action as their only
// argument and their configuration in the environment (OCF_RESKEY_*), as
// defined by the OCF resource agent API 1.1 and as pacemaker-execd runs
// them. Debian's resource-agents package runs unchanged.
package ocf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"ringmaster/lrmd"
)

// DefaultRoot is the standard OCF_ROOT.
const DefaultRoot = "/usr/lib/ocf"

// DefaultPath is the PATH agents run with. Agents call system tools by
// name; the daemon's own PATH (possibly a systemd unit's minimal one) must
// not decide whether they are found.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Class is the "ocf" agent class.
type Class struct {
	root      string
	env       []string
	maxOutput int

	mu    sync.Mutex
	cache map[string]cachedMD // by script path
}

type cachedMD struct {
	mtime time.Time
	size  int64
	md    *lrmd.MetaData
}

// Option configures a Class.
type Option func(*Class)

// WithEnv adds environment variables ("NAME=value") to every agent run,
// on top of PATH and the OCF variables.
func WithEnv(env ...string) Option { return func(c *Class) { c.env = append(c.env, env...) } }

// WithMaxOutput bounds each captured output stream.
func WithMaxOutput(n int) Option { return func(c *Class) { c.maxOutput = n } }

// New returns the OCF class rooted at root ("" means DefaultRoot).
func New(root string, opts ...Option) *Class {
	if root == "" {
		root = DefaultRoot
	}
	c := &Class{root: root, env: []string{"PATH=" + DefaultPath}, cache: make(map[string]cachedMD)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Root returns OCF_ROOT.
func (c *Class) Root() string { return c.root }

// Name implements lrmd.Class.
func (c *Class) Name() string { return "ocf" }

func (c *Class) path(id lrmd.AgentID) string {
	return filepath.Join(c.root, "resource.d", id.Provider, id.Type)
}

// List implements lrmd.Class: every executable regular file (or link to
// one) under resource.d/*/, skipping dot files (Debian ships
// .ocf-binaries and friends there).
func (c *Class) List(context.Context) ([]lrmd.AgentID, error) {
	provs, err := os.ReadDir(filepath.Join(c.root, "resource.d"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []lrmd.AgentID
	for _, p := range provs {
		if strings.HasPrefix(p.Name(), ".") {
			continue
		}
		dir := filepath.Join(c.root, "resource.d", p.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // a provider that is a file or unreadable is not an error for listing
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				out = append(out, lrmd.AgentID{Class: "ocf", Provider: p.Name(), Type: e.Name()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

func (c *Class) stat(id lrmd.AgentID) (string, os.FileInfo, error) {
	p := c.path(id)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return p, nil, fmt.Errorf("%w: %s (no executable %s)", lrmd.ErrNotInstalled, id, p)
	}
	return p, fi, nil
}

// MetaData implements lrmd.Class. Results are cached until the script
// changes (size or modification time).
func (c *Class) MetaData(ctx context.Context, id lrmd.AgentID) (*lrmd.MetaData, error) {
	p, fi, err := c.stat(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	cm, ok := c.cache[p]
	c.mu.Unlock()
	if ok && cm.mtime.Equal(fi.ModTime()) && cm.size == fi.Size() {
		return cm.md, nil
	}
	res := c.Exec(ctx, lrmd.Request{Agent: id, Resource: id.Type, Action: lrmd.ActionMetaData, Timeout: 5 * time.Second})
	if !res.OK() {
		return nil, fmt.Errorf("%s meta-data: %s", id, res.Summary())
	}
	md, err := lrmd.ParseMetaData([]byte(res.Stdout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	c.mu.Lock()
	c.cache[p] = cachedMD{mtime: fi.ModTime(), size: fi.Size(), md: md}
	c.mu.Unlock()
	return md, nil
}

// Env builds the environment an OCF agent runs with (exported for tests
// and for `ringctl agent exec --print-env` style debugging).
func (c *Class) Env(req lrmd.Request) []string {
	env := append([]string(nil), c.env...)
	env = append(env,
		"OCF_ROOT="+c.root,
		"OCF_RA_VERSION_MAJOR=1",
		"OCF_RA_VERSION_MINOR=1",
		"OCF_RESOURCE_INSTANCE="+req.Resource,
		"OCF_RESOURCE_TYPE="+req.Agent.Type,
		"OCF_RESOURCE_PROVIDER="+req.Agent.Provider,
	)
	keys := func(m map[string]string) []string {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	for _, k := range keys(req.Params) {
		if k == "OCF_CHECK_LEVEL" {
			// pacemaker passes the monitor depth unprefixed.
			env = append(env, "OCF_CHECK_LEVEL="+req.Params[k])
			continue
		}
		env = append(env, "OCF_RESKEY_"+k+"="+req.Params[k])
	}
	meta := copyMap(req.Meta)
	// Timeout and interval are always passed, in milliseconds, as
	// pacemaker does; agents compute their own waits from them.
	meta["timeout"] = strconv.FormatInt(req.Timeout.Milliseconds(), 10)
	meta["interval"] = strconv.FormatInt(req.Interval.Milliseconds(), 10)
	meta["name"] = req.Action
	for _, k := range keys(meta) {
		env = append(env, "OCF_RESKEY_CRM_meta_"+strings.ReplaceAll(k, "-", "_")+"="+meta[k])
	}
	return env
}

// Exec implements lrmd.Class.
func (c *Class) Exec(ctx context.Context, req lrmd.Request) lrmd.Result {
	start := time.Now()
	p, _, err := c.stat(req.Agent)
	if err != nil {
		return lrmd.Result{RC: lrmd.RCErrInstalled, Status: lrmd.StatusNotInstalled, Reason: err.Error(), Started: start}
	}
	for k := range req.Params {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return lrmd.Result{RC: lrmd.RCErrArgs, Status: lrmd.StatusInvalid, Reason: fmt.Sprintf("parameter name %q cannot be passed in the environment", k), Started: start}
		}
	}
	pr := lrmd.RunProcess(ctx, lrmd.ProcSpec{
		Path:      p,
		Args:      []string{req.Action},
		Env:       c.Env(req),
		Dir:       "/",
		MaxOutput: c.maxOutput,
	})
	return ProcToResult(ctx, req, pr, start, func(code int) lrmd.RC { return lrmd.RC(code) })
}

// ProcToResult turns a process outcome into a Result, mapping the exit code
// with mapRC; codes outside the OCF range become RCErrGeneric. Shared with
// the LSB class.
func ProcToResult(ctx context.Context, req lrmd.Request, pr lrmd.ProcResult, start time.Time, mapRC func(int) lrmd.RC) lrmd.Result {
	var res lrmd.Result
	switch {
	case pr.Err != nil && ctx.Err() != nil:
		res = lrmd.InterruptedResult(ctx, req.Timeout.String())
	case pr.Err != nil:
		res = lrmd.Result{RC: lrmd.RCErrGeneric, Status: lrmd.StatusExecError, Reason: pr.Err.Error()}
	case pr.Signal != 0:
		res = lrmd.Result{RC: lrmd.RCErrGeneric, Status: lrmd.StatusExecError, Reason: fmt.Sprintf("killed by signal %v", pr.Signal)}
	default:
		rc := mapRC(pr.ExitCode)
		res = lrmd.Result{RC: rc, Status: lrmd.StatusDone}
		if !rc.Known() {
			res.Reason = fmt.Sprintf("agent exited with non-OCF code %d", pr.ExitCode)
			res.RC = lrmd.RCErrGeneric
		}
	}
	res.Stdout, res.Stderr, res.Truncated = string(pr.Stdout), string(pr.Stderr), pr.Truncated
	if res.Reason == "" && res.RC != lrmd.RCOK && res.RC != lrmd.RCNotRunning {
		res.Reason = lastLine(res.Stderr)
	}
	res.Started = start
	res.Duration = time.Since(start)
	return res
}

// lastLine picks the failure reason from stderr: the ocf_exit_reason line
// if the agent printed one (as pacemaker does), else the last line, since
// agents log the cause with ocf_log just before exiting.
func lastLine(s string) string {
	const marker = "ocf-exit-reason:"
	if i := strings.LastIndex(s, marker); i >= 0 {
		s = s[i+len(marker):]
		if j := strings.IndexByte(s, '\n'); j >= 0 {
			s = s[:j]
		}
	}
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func copyMap(in map[string]string) map[string]string {
	out := make(map[string]string, len(in)+3)
	for k, v := range in {
		out[k] = v
	}
	return out
}
