// Package agent runs fence agents for stonithd: Debian's fence-agents
// executables (/usr/sbin/fence_*, the stdin key=value protocol),
// builtin:fence-script (an operator's command) and builtin:fence-vsock
// (a VM guest asking its host to power-cycle another VM). Registry
// implements stonithd.Executor.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"ringmaster/lrmd"
	"ringmaster/stonithd"
	"ringmaster/stonithd/vsockfence"
)

// DefaultDir is where Debian installs fence agents.
const DefaultDir = "/usr/sbin"

// Exit codes of the fence-agent API (and of the builtins).
const (
	RCSuccess = 0 // action done; status: on
	RCError   = 1 // failed; status: unknown
	RCOff     = 2 // status: off
)

// Errors.
var (
	ErrNotInstalled = errors.New("fence agent not installed")
	ErrBadName      = errors.New("bad fence agent name")
	ErrBadParam     = errors.New("bad fence agent parameter")
)

// agentName is what a fence-agents executable may be called: no paths.
var agentName = regexp.MustCompile(`^fence_[A-Za-z0-9_.-]+$`)

// Config configures a Registry.
type Config struct {
	// Dir holds the fence_* executables (default DefaultDir).
	Dir string
	// MaxOutput bounds each captured stream (0: defaultMaxOutput).
	MaxOutput int
	// Env is the agents' environment (default: a PATH only; agents get
	// their parameters on stdin, never from the daemon's environment).
	Env []string
	// Node is this node's name, sent as the requester by fence-vsock.
	Node string
	// VsockDial overrides how fence-vsock reaches the host: tests dial a
	// Unix socket. Nil: AF_VSOCK to the device's vsock_cid/vsock_port.
	VsockDial func(cid, port uint32) vsockfence.Dialer
	// Prestart keeps one process of each agent KeepWarm names started
	// and waiting for its request (see prestart.go): a fencing then
	// skips the agent's interpreter start.
	Prestart bool
}

// Registry runs every kind of fence agent. It is safe for concurrent use.
type Registry struct {
	cfg Config

	mu     sync.Mutex
	warm   map[string]bool   // executables KeepWarm asked for, by path
	spares map[string]*spare // by path
	// starting: a refill of the path is starting its spare (outside mu).
	starting map[string]bool
	closed   bool
	wg       sync.WaitGroup // refills in flight
}

// New returns a Registry.
func New(cfg Config) *Registry {
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = defaultMaxOutput
	}
	return &Registry{cfg: cfg, warm: map[string]bool{}, spares: map[string]*spare{}, starting: map[string]bool{}}
}

// Exec runs cmd (stonithd.Executor).
func (r *Registry) Exec(ctx context.Context, cmd stonithd.Command) stonithd.CommandResult {
	switch cmd.Agent {
	case stonithd.BuiltinScript:
		return r.execScript(ctx, cmd)
	case stonithd.BuiltinVsock:
		return r.execVsock(ctx, cmd)
	}
	path, err := r.path(cmd.Agent)
	if err != nil {
		return stonithd.CommandResult{RC: -1, Err: err.Error()}
	}
	stdin, err := EncodeArgs(cmd.Args)
	if err != nil {
		return stonithd.CommandResult{RC: -1, Err: err.Error()}
	}
	return r.runAgent(ctx, path, stdin)
}

// defaultMaxOutput bounds each captured stream: a fence agent's list of a
// large PDU is a few KiB; 64 KiB leaves room without letting a misbehaving
// agent grow the daemon.
const defaultMaxOutput = 64 << 10

func result(res lrmd.ProcResult) stonithd.CommandResult {
	out := stonithd.CommandResult{RC: res.ExitCode, Output: string(res.Stdout)}
	if res.Err != nil {
		out.RC = -1
		if errors.Is(res.Err, context.DeadlineExceeded) {
			out.TimedOut = true
		} else {
			out.Err = res.Err.Error()
		}
		return out
	}
	if res.ExitCode != 0 {
		// fence-agents print the reason on stderr ("Failed: Unable to
		// obtain correct plug status"); keep it for history and logs.
		if msg := strings.TrimSpace(string(res.Stderr)); msg != "" && strings.TrimSpace(out.Output) == "" {
			out.Output = msg
		}
	}
	return out
}

func (r *Registry) path(agent string) (string, error) {
	if !agentName.MatchString(agent) {
		return "", fmt.Errorf("%w: %q (want fence_NAME)", ErrBadName, agent)
	}
	p := filepath.Join(r.cfg.Dir, agent)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s", ErrNotInstalled, p)
	}
	return p, nil
}

// EncodeArgs renders the fence-agent stdin protocol: one key=value per
// line, action first, then the rest sorted (deterministic, and easy to
// read in a debug log). A newline or NUL in a key or value would let a
// parameter smuggle in another one (an action=off inside a password), so
// it is refused.
func EncodeArgs(args map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(args))
	for k := range args {
		if k != "action" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if _, ok := args["action"]; ok {
		keys = append([]string{"action"}, keys...)
	}
	var b strings.Builder
	for _, k := range keys {
		v := args[k]
		if k == "" || strings.ContainsAny(k, "=\n\r\x00 ") || strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("%w: %q", ErrBadParam, k)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// Metadata returns an agent's meta-data: fence-agents are asked with
// action=metadata on stdin; builtins describe themselves.
func (r *Registry) Metadata(ctx context.Context, agent string) (*stonithd.Metadata, error) {
	switch agent {
	case stonithd.BuiltinScript:
		return scriptMetadata(), nil
	case stonithd.BuiltinVsock:
		return vsockMetadata(), nil
	}
	path, err := r.path(agent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := lrmd.RunProcess(ctx, lrmd.ProcSpec{Path: path, Env: r.cfg.Env, Stdin: []byte("action=metadata\n"), MaxOutput: stonithd.MaxMetadataSize})
	if res.Err != nil {
		return nil, fmt.Errorf("%s metadata: %w", agent, res.Err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s metadata: exit %d: %s", agent, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return stonithd.ParseMetadata(res.Stdout)
}

// MetadataFunc adapts Metadata for stonithd.DevicesFromCIB: errors give
// nil (the device then assumes the agent supports everything).
func (r *Registry) MetadataFunc(ctx context.Context) func(agent string) *stonithd.Metadata {
	return func(agent string) *stonithd.Metadata {
		md, err := r.Metadata(ctx, agent)
		if err != nil {
			return nil
		}
		return md
	}
}

// List returns the installed agents: the fence_* executables of Dir and
// the builtins, sorted.
func (r *Registry) List() ([]string, error) {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	out := []string{stonithd.BuiltinScript, stonithd.BuiltinVsock}
	for _, e := range ents {
		if agentName.MatchString(e.Name()) {
			if _, err := r.path(e.Name()); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// ---- builtin:fence-script ----

func scriptMetadata() *stonithd.Metadata {
	return &stonithd.Metadata{
		Name:      "fence-script",
		ShortDesc: "Fence by running a command",
		Params: []stonithd.MetaParam{
			{Name: "command", Required: true, Type: "string", ShortDesc: "Command line run by /bin/sh -c; $1 is the action, $2 the target node"},
			{Name: "port", Type: "string", ShortDesc: "Target as the device knows it (pcmk_host_map), in $FENCE_PORT"},
		},
		Actions: []stonithd.MetaAction{{Name: "reboot"}, {Name: "off"}, {Name: "on"}, {Name: "status"}, {Name: "monitor"}, {Name: "metadata"}},
	}
}

// execScript runs `/bin/sh -c COMMAND fence-script ACTION NODE`: $1 is the
// action, $2 the target node; the environment has FENCE_ACTION,
// FENCE_TARGET (node name), FENCE_PORT (its pcmk_host_map port) and
// FENCE_DEVICE, and stdin the fence-agent key=value lines. Exit codes are
// the fence-agent ones (status: 0 on, 2 off).
func (r *Registry) execScript(ctx context.Context, cmd stonithd.Command) stonithd.CommandResult {
	command := strings.TrimSpace(cmd.Args["command"])
	if command == "" {
		return stonithd.CommandResult{RC: -1, Err: "fence-script: parameter command is required"}
	}
	args := make(map[string]string, len(cmd.Args))
	for k, v := range cmd.Args {
		if k != "command" {
			args[k] = v
		}
	}
	stdin, err := EncodeArgs(args)
	if err != nil {
		return stonithd.CommandResult{RC: -1, Err: err.Error()}
	}
	env := append([]string(nil), r.cfg.Env...)
	env = append(env,
		"FENCE_ACTION="+cmd.AgentAction,
		"FENCE_TARGET="+cmd.Args["nodename"],
		"FENCE_PORT="+cmd.Args["port"],
		"FENCE_DEVICE="+cmd.Device,
	)
	res := lrmd.RunProcess(ctx, lrmd.ProcSpec{
		Path:      "/bin/sh",
		Args:      []string{"-c", command, "fence-script", cmd.AgentAction, cmd.Args["nodename"]},
		Env:       env,
		Stdin:     stdin,
		MaxOutput: r.cfg.MaxOutput,
	})
	return result(res)
}

// ---- builtin:fence-vsock ----

func vsockMetadata() *stonithd.Metadata {
	return &stonithd.Metadata{
		Name:      "fence-vsock",
		ShortDesc: "Ask the hypervisor host over AF_VSOCK to power-cycle a VM",
		Params: []stonithd.MetaParam{
			{Name: "port", Type: "string", ShortDesc: "VM name on the host (map node names with pcmk_host_map)"},
			{Name: "key_file", Required: true, Type: "string", ShortDesc: "Shared key file (same as the host's fence-host --key-file)"},
			{Name: "vsock_cid", Type: "integer", Default: strconv.Itoa(vsockfence.DefaultHostCID), ShortDesc: "Context id of the host"},
			{Name: "vsock_port", Type: "integer", Default: strconv.Itoa(vsockfence.DefaultPort), ShortDesc: "vsock port of the host's responder"},
		},
		Actions: []stonithd.MetaAction{{Name: "reboot"}, {Name: "off"}, {Name: "on"}, {Name: "status"}, {Name: "monitor"}, {Name: "metadata"}},
	}
}

func uintParam(args map[string]string, name string, def uint32) (uint32, error) {
	v := strings.TrimSpace(args[name])
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q", ErrBadParam, name, v)
	}
	return uint32(n), nil
}

func (r *Registry) execVsock(ctx context.Context, cmd stonithd.Command) stonithd.CommandResult {
	fail := func(err error) stonithd.CommandResult {
		return stonithd.CommandResult{RC: RCError, Output: err.Error()}
	}
	action, ok := vsockfence.ParseAction(cmd.AgentAction)
	if !ok {
		return fail(fmt.Errorf("fence-vsock: action %q not supported", cmd.AgentAction))
	}
	cid, err := uintParam(cmd.Args, "vsock_cid", vsockfence.DefaultHostCID)
	if err != nil {
		return fail(err)
	}
	port, err := uintParam(cmd.Args, "vsock_port", vsockfence.DefaultPort)
	if err != nil {
		return fail(err)
	}
	keyFile := cmd.Args["key_file"]
	if keyFile == "" {
		return fail(errors.New("fence-vsock: parameter key_file is required"))
	}
	key, err := vsockfence.LoadKey(keyFile)
	if err != nil {
		return fail(err)
	}
	dial := vsockfence.VsockDialer(cid, port)
	if r.cfg.VsockDial != nil {
		dial = r.cfg.VsockDial(cid, port)
	}
	vm := cmd.Args["port"]
	if vm == "" {
		vm = cmd.Args["nodename"]
	}
	c := &vsockfence.Client{Key: key, Requester: r.cfg.Node, Dial: dial}
	resp, err := c.Do(ctx, action, vm)
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return stonithd.CommandResult{RC: -1, TimedOut: true, Output: err.Error()}
		}
		return fail(err)
	}
	switch resp.Status {
	case vsockfence.StatusOK:
		return stonithd.CommandResult{RC: RCSuccess, Output: resp.Message}
	case vsockfence.StatusOff:
		return stonithd.CommandResult{RC: RCOff, Output: resp.Message}
	}
	return fail(resp.Err())
}
