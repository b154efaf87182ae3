// Package lsb runs LSB init scripts (/etc/init.d/NAME) as resource agents,
// mapping their exit codes onto OCF codes the way pacemaker does: for
// status, 0 = running, 1/2/3 = not running (dead with pid or lock file,
// stopped), 4 = unknown, 150 = not installed, 151 = insufficient
// privileges; other actions share OCF's codes 0-7.
package lsb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/ocf"
)

// DefaultDir is where init scripts live.
const DefaultDir = "/etc/init.d"

// LSB status exit codes (LSB core spec 20.2, "Init Script Actions").
const (
	StatusRunning      = 0
	StatusDeadPidFile  = 1
	StatusDeadLockFile = 2
	StatusNotRunning   = 3
	StatusUnknown      = 4
	// 150-199 are reserved for application use; pacemaker gives two of
	// them a meaning and so do we.
	StatusNotInstalled     = 150
	StatusInsufficientPriv = 151
)

// Class is the "lsb" agent class.
type Class struct {
	dir       string
	maxOutput int
}

// New returns the LSB class reading scripts from dir ("" means DefaultDir).
func New(dir string) *Class {
	if dir == "" {
		dir = DefaultDir
	}
	return &Class{dir: dir}
}

// Name implements lrmd.Class.
func (c *Class) Name() string { return "lsb" }

// notScripts are files in init.d that are not services.
var notScripts = map[string]bool{"README": true, "skeleton": true, "rc": true, "rcS": true, "functions": true}

// List implements lrmd.Class.
func (c *Class) List(context.Context) ([]lrmd.AgentID, error) {
	ents, err := os.ReadDir(c.dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []lrmd.AgentID
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || notScripts[n] || strings.Contains(n, ".dpkg-") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(c.dir, n)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			out = append(out, lrmd.AgentID{Class: "lsb", Type: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

func (c *Class) script(id lrmd.AgentID) (string, error) {
	p := filepath.Join(c.dir, id.Type)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return p, fmt.Errorf("%w: %s (no executable %s)", lrmd.ErrNotInstalled, id, p)
	}
	return p, nil
}

// MetaData implements lrmd.Class: synthesised from the script's LSB header
// (### BEGIN INIT INFO), since init scripts have no meta-data action.
// LSB agents take no parameters.
func (c *Class) MetaData(_ context.Context, id lrmd.AgentID) (*lrmd.MetaData, error) {
	p, err := c.script(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	short, long := parseHeader(b)
	if short == "" {
		short = id.Type
	}
	acts := []lrmd.Action{
		{Name: "meta-data", Timeout: "5s"},
		{Name: "start", Timeout: "15s"},
		{Name: "stop", Timeout: "15s"},
		{Name: "status", Timeout: "15s"},
		{Name: "restart", Timeout: "15s"},
		{Name: "force-reload", Timeout: "15s"},
		{Name: "monitor", Timeout: "15s", Interval: "15s"},
	}
	return lrmd.NewMetaData(id.Type, short, long, nil, acts), nil
}

// parseHeader returns Short-Description and Description from the LSB
// comment block.
func parseHeader(b []byte) (short, long string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	in, inDesc := false, false
	var desc []string
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "### BEGIN INIT INFO"):
			in = true
			continue
		case strings.HasPrefix(l, "### END INIT INFO"):
			return short, strings.Join(desc, "\n")
		case !in:
			continue
		}
		t := strings.TrimPrefix(l, "#")
		switch {
		case strings.HasPrefix(t, " Short-Description:"):
			short = strings.TrimSpace(strings.TrimPrefix(t, " Short-Description:"))
			inDesc = false
		case strings.HasPrefix(t, " Description:"):
			desc = append(desc, strings.TrimSpace(strings.TrimPrefix(t, " Description:")))
			inDesc = true
		case inDesc && (strings.HasPrefix(t, "\t") || strings.HasPrefix(t, "  ")):
			desc = append(desc, strings.TrimSpace(t))
		default:
			inDesc = false
		}
	}
	return short, strings.Join(desc, "\n")
}

// MapRC maps an init script's exit code for action to an OCF code
// (pacemaker's services__lsb2ocf).
func MapRC(action string, code int) lrmd.RC {
	if action != lrmd.ActionStatus && action != lrmd.ActionMonitor {
		if code < 0 || code > int(lrmd.RCNotRunning) {
			return lrmd.RCErrGeneric
		}
		return lrmd.RC(code)
	}
	switch code {
	case StatusRunning:
		return lrmd.RCOK
	case StatusDeadPidFile, StatusDeadLockFile, StatusNotRunning:
		return lrmd.RCNotRunning
	case StatusNotInstalled:
		return lrmd.RCErrInstalled
	case StatusInsufficientPriv:
		return lrmd.RCErrPerm
	}
	return lrmd.RCErrGeneric
}

// Exec implements lrmd.Class. monitor runs the script's status action.
// validate-all is not part of LSB and answers RCErrUnimplemented.
func (c *Class) Exec(ctx context.Context, req lrmd.Request) lrmd.Result {
	start := time.Now()
	p, err := c.script(req.Agent)
	if err != nil {
		return lrmd.Result{RC: lrmd.RCErrInstalled, Status: lrmd.StatusNotInstalled, Reason: err.Error(), Started: start}
	}
	action := req.Action
	switch action {
	case lrmd.ActionMetaData:
		md, err := c.MetaData(ctx, req.Agent)
		if err != nil {
			return lrmd.Result{RC: lrmd.RCErrGeneric, Status: lrmd.StatusDone, Reason: err.Error(), Started: start}
		}
		x, _ := md.XML()
		return lrmd.Result{RC: lrmd.RCOK, Status: lrmd.StatusDone, Stdout: string(x), Started: start}
	case lrmd.ActionMonitor:
		action = lrmd.ActionStatus
	case lrmd.ActionValidateAll, lrmd.ActionPromote, lrmd.ActionDemote, lrmd.ActionNotify:
		return lrmd.Result{RC: lrmd.RCErrUnimplemented, Status: lrmd.StatusDone, Reason: "LSB init scripts have no " + req.Action + " action", Started: start}
	}
	pr := lrmd.RunProcess(ctx, lrmd.ProcSpec{
		Path:      p,
		Args:      []string{action},
		Env:       []string{"PATH=" + ocf.DefaultPath, "LANG=C"},
		Dir:       "/",
		MaxOutput: c.maxOutput,
	})
	return ocf.ProcToResult(ctx, req, pr, start, func(code int) lrmd.RC { return MapRC(action, code) })
}
