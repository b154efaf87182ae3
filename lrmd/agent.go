package lrmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Callers test them with errors.Is; messages add context.
var (
	// ErrBadAgent: an agent name is not CLASS:TYPE or ocf:PROVIDER:TYPE.
	ErrBadAgent = errors.New("bad agent name")
	// ErrUnknownClass: no class of that name is registered.
	ErrUnknownClass = errors.New("unknown agent class")
	// ErrNotInstalled: the agent does not exist on this node.
	ErrNotInstalled = errors.New("agent not installed")
	// ErrMissingParam: a parameter the meta-data marks required is absent.
	ErrMissingParam = errors.New("missing required parameter")
	// ErrBadParam: a parameter value does not fit its declared type, or
	// (for builtin agents) the parameter is unknown.
	ErrBadParam = errors.New("invalid parameter")
	// ErrNotFound: no such recurring operation.
	ErrNotFound = errors.New("not found")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("lrmd closed")
)

// Standard action names. OCF agents may offer more (migrate_to, ...);
// lrmd passes any action through and lets the agent answer
// RCErrUnimplemented.
const (
	ActionStart       = "start"
	ActionStop        = "stop"
	ActionMonitor     = "monitor"
	ActionMetaData    = "meta-data"
	ActionValidateAll = "validate-all"
	ActionPromote     = "promote"
	ActionDemote      = "demote"
	ActionNotify      = "notify"
	ActionReload      = "reload"
	ActionStatus      = "status" // LSB spelling of monitor
)

// AgentID names an agent: ocf:PROVIDER:TYPE, lsb:TYPE or builtin:TYPE.
type AgentID struct {
	Class    string
	Provider string // only for ocf
	Type     string
}

// ParseAgent parses "ocf:heartbeat:Dummy", "lsb:ssh" or "builtin:vip".
// Names that could escape the agent directory ("..", "/") are rejected
// here, so no class has to repeat that check.
func ParseAgent(s string) (AgentID, error) {
	parts := strings.Split(s, ":")
	var id AgentID
	switch {
	case len(parts) == 3 && parts[0] == "ocf":
		id = AgentID{Class: "ocf", Provider: parts[1], Type: parts[2]}
	case len(parts) == 2 && parts[0] != "ocf":
		id = AgentID{Class: parts[0], Type: parts[1]}
	default:
		return AgentID{}, fmt.Errorf("%w %q: want ocf:PROVIDER:TYPE, lsb:NAME or builtin:NAME", ErrBadAgent, s)
	}
	for _, p := range []string{id.Class, id.Provider, id.Type} {
		if strings.ContainsAny(p, "/\x00") || p == "." || p == ".." {
			return AgentID{}, fmt.Errorf("%w %q: path characters in name", ErrBadAgent, s)
		}
	}
	if id.Class == "" || id.Type == "" || (id.Class == "ocf" && id.Provider == "") {
		return AgentID{}, fmt.Errorf("%w %q: empty component", ErrBadAgent, s)
	}
	return id, nil
}

func (id AgentID) String() string {
	if id.Class == "ocf" {
		return id.Class + ":" + id.Provider + ":" + id.Type
	}
	return id.Class + ":" + id.Type
}

// Request is one action as a Class executes it. The Manager builds it from
// an Op after queueing and validation; classes never see queueing.
type Request struct {
	Agent    AgentID
	Resource string // resource instance name (OCF_RESOURCE_INSTANCE)
	Action   string
	Params   map[string]string // instance attributes (OCF_RESKEY_<name>)
	Meta     map[string]string // meta attributes (OCF_RESKEY_CRM_meta_<name>)
	Interval time.Duration     // 0 for one-shot actions and probes
	Timeout  time.Duration     // already applied to ctx; passed to agents as meta timeout
}

// Result is the outcome of one operation.
type Result struct {
	RC     RC
	Status Status
	// Reason is a one-line human explanation when the operation failed
	// or was rejected ("missing required parameter ip", "timed out after
	// 20s", "address in use by 02:..").
	Reason string
	// Stdout and Stderr are the agent's captured output, each bounded
	// (see Truncated). Builtin agents write their messages to Stdout.
	Stdout, Stderr string
	// Truncated is set when output beyond the bound was discarded.
	Truncated bool
	Started   time.Time
	Duration  time.Duration
}

// OK reports whether the agent ran and answered RCOK.
func (r Result) OK() bool { return r.Status == StatusDone && r.RC == RCOK }

// Summary is a one-line rendering for logs and CLIs.
func (r Result) Summary() string {
	s := fmt.Sprintf("%s (rc=%d)", r.RC, int(r.RC))
	if r.Status != StatusDone && !strings.HasPrefix(r.Reason, r.Status.String()) {
		s = r.Status.String() + ": " + s
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// Class is one family of agents (ocf, lsb, builtin). Implementations must
// be safe for concurrent use: the Manager runs operations of different
// resources in parallel. Exec must return when ctx is done (the Manager
// puts the operation timeout on ctx); process-based classes kill the
// agent's whole process group then.
type Class interface {
	Name() string
	// List returns the agents of this class installed on this node.
	List(ctx context.Context) ([]AgentID, error)
	// MetaData returns the agent's parsed meta-data. Errors wrap
	// ErrNotInstalled when the agent does not exist.
	MetaData(ctx context.Context, id AgentID) (*MetaData, error)
	// Exec runs one action. Validation has already happened.
	Exec(ctx context.Context, req Request) Result
}

// StrictClass is implemented by classes whose meta-data is authoritative
// (builtin agents): unknown parameters and ill-typed values are rejected
// before the agent runs. Scripts' meta-data is often incomplete, so for
// them only required parameters are enforced.
type StrictClass interface {
	Strict() bool
}
