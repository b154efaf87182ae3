// Package dummy implements builtin:dummy, the Go counterpart of Debian's
// ocf:heartbeat:Dummy: a resource whose whole state is one file. It needs
// no privileges (the `make demo` cluster runs as a normal user) and lets
// tests drive the resource manager: start writes the state file, stop
// removes it, monitor reports whether it exists, so deleting the file from
// outside injects a monitor failure.
package dummy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ringmaster/lrmd"
)

// DefaultRunDir is where state files go when the state parameter is not
// given and New gets no run directory (the standard ringmaster run dir).
const DefaultRunDir = "/run/ringmaster"

// Agent is builtin:dummy. It keeps no state in memory: everything is in
// the state files, so Exec is safe for concurrent use (for different
// resources; the same resource is serialised by the Manager).
type Agent struct {
	runDir string
	md     *lrmd.MetaData
}

// New returns the dummy agent. runDir is where default state files live
// (RUN_DIR/dummy-RESOURCE.state); "" means DefaultRunDir.
func New(runDir string) *Agent {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return &Agent{runDir: runDir, md: metaData()}
}

// Type implements lrmd.Builtin.
func (a *Agent) Type() string { return "dummy" }

// MetaData implements lrmd.Builtin.
func (a *Agent) MetaData() *lrmd.MetaData { return a.md }

func metaData() *lrmd.MetaData {
	return lrmd.NewMetaData("dummy", "Example stateless resource agent (Dummy)",
		"A resource that does nothing but record its state in a file, like ocf:heartbeat:Dummy: start writes the state file, stop removes it, monitor reports whether it exists. Needs no privileges; for demos and tests (remove the state file to make the next monitor fail).",
		[]lrmd.ParamSpec{
			{Name: "state", Unique: true, Short: "State file; default RUN_DIR/dummy-RESOURCE.state (RUN_DIR: the lrmd run directory, /run/ringmaster)"},
			{Name: "fake", Default: "dummy", Short: "Fake attribute that can be changed to cause a reload; written into the state file"},
			{Name: "op_sleep", Type: "duration", Default: "0", Short: "How long start, stop and monitor wait before acting (a Go duration, or an integer in seconds as in Dummy)"},
			{Name: "fail_start", Type: "boolean", Default: "false", Short: "Make start fail with rc 1 (for tests)"},
		},
		[]lrmd.Action{
			{Name: "start", Timeout: "20s"},
			{Name: "stop", Timeout: "20s"},
			{Name: "monitor", Timeout: "20s", Interval: "10s", Depth: "0"},
			{Name: "reload", Timeout: "20s"},
			{Name: "validate-all", Timeout: "20s"},
			{Name: "meta-data", Timeout: "5s"},
		})
}

// config is the parsed parameters.
type config struct {
	state     string
	fake      string
	opSleep   time.Duration
	failStart bool
}

// ErrConfig wraps parameter errors (rc 6).
var ErrConfig = errors.New("invalid configuration")

func (a *Agent) parseConfig(req lrmd.Request) (config, error) {
	p := req.Params
	c := config{state: strings.TrimSpace(p["state"]), fake: p["fake"], failStart: lrmd.IsTrue(p["fail_start"])}
	if c.state == "" {
		if req.Resource == "" {
			return c, fmt.Errorf("%w: no state file and no resource name to derive one from", ErrConfig)
		}
		// Clone instances ("d:0") are fine in a file name; a '/' is not.
		c.state = filepath.Join(a.runDir, "dummy-"+strings.ReplaceAll(req.Resource, "/", "_")+".state")
	} else if !filepath.IsAbs(c.state) {
		return c, fmt.Errorf("%w: state=%q is not an absolute path", ErrConfig, c.state)
	}
	s := strings.TrimSpace(p["op_sleep"])
	if s == "" {
		s = "0"
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		c.opSleep = time.Duration(n) * time.Second // Dummy's op_sleep is sleep(1) seconds
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		c.opSleep = d
	} else {
		return c, fmt.Errorf("%w: op_sleep=%q is not a duration", ErrConfig, p["op_sleep"])
	}
	return c, nil
}

// Exec implements lrmd.Builtin.
func (a *Agent) Exec(ctx context.Context, req lrmd.Request) lrmd.Result {
	var out lrmd.Output
	c, err := a.parseConfig(req)
	if err != nil {
		return out.Result(lrmd.RCErrConfigured, err.Error())
	}
	switch req.Action {
	case lrmd.ActionStart, lrmd.ActionStop, lrmd.ActionMonitor, lrmd.ActionStatus:
		if err := sleep(ctx, c.opSleep); err != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("%s interrupted during op_sleep=%s", req.Action, c.opSleep))
		}
	}
	switch req.Action {
	case lrmd.ActionStart:
		if c.failStart {
			return out.Result(lrmd.RCErrGeneric, "fail_start is set")
		}
		return write(c, &out)
	case lrmd.ActionStop:
		if err := os.Remove(c.state); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out.Result(rcFor(err), fmt.Sprintf("remove state file: %v", err))
		}
		return out.Result(lrmd.RCOK, "")
	case lrmd.ActionMonitor, lrmd.ActionStatus:
		return monitor(c, &out)
	case lrmd.ActionReload:
		// Dummy re-reads its parameters; here the new fake value goes into
		// the state file of a running resource.
		if _, err := os.Stat(c.state); err != nil {
			return out.Result(lrmd.RCOK, "") // not running: nothing to reload
		}
		return write(c, &out)
	case lrmd.ActionValidateAll:
		return out.Result(lrmd.RCOK, "")
	}
	return out.Result(lrmd.RCErrUnimplemented, "dummy has no action "+req.Action)
}

// sleep waits d or until ctx ends (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write creates the state file (and its directory) holding the fake value.
func write(c config, out *lrmd.Output) lrmd.Result {
	if err := os.MkdirAll(filepath.Dir(c.state), 0o755); err != nil {
		return out.Result(rcFor(err), fmt.Sprintf("create state directory: %v", err))
	}
	if err := os.WriteFile(c.state, []byte(c.fake+"\n"), 0o644); err != nil {
		return out.Result(rcFor(err), fmt.Sprintf("write state file: %v", err))
	}
	return out.Result(lrmd.RCOK, "")
}

// monitor answers running when the state file exists.
func monitor(c config, out *lrmd.Output) lrmd.Result {
	_, err := os.Stat(c.state)
	switch {
	case err == nil:
		return out.Result(lrmd.RCOK, "")
	case errors.Is(err, fs.ErrNotExist):
		return out.Result(lrmd.RCNotRunning, "")
	}
	return out.Result(rcFor(err), fmt.Sprintf("check state file: %v", err))
}

// rcFor maps a file system error: a permission problem is the node's, not
// a soft failure to retry (e.g. the default /run/ringmaster as a normal
// user).
func rcFor(err error) lrmd.RC {
	if errors.Is(err, fs.ErrPermission) {
		return lrmd.RCErrPerm
	}
	return lrmd.RCErrGeneric
}
