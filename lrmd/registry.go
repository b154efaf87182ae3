package lrmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrTimedOut is the cancellation cause the Manager puts on an operation's
// context when its timeout expires; classes report it as StatusTimedOut.
var ErrTimedOut = errors.New("timed out")

// Registry maps class names to classes. It is immutable after NewRegistry
// and therefore safe for concurrent use.
type Registry struct {
	classes map[string]Class
	names   []string
}

// NewRegistry registers classes by their Name. A later class with the same
// name replaces an earlier one (tests use that to swap in fakes).
func NewRegistry(classes ...Class) *Registry {
	r := &Registry{classes: make(map[string]Class)}
	for _, c := range classes {
		if _, dup := r.classes[c.Name()]; !dup {
			r.names = append(r.names, c.Name())
		}
		r.classes[c.Name()] = c
	}
	sort.Strings(r.names)
	return r
}

// Classes returns the registered class names, sorted.
func (r *Registry) Classes() []string { return append([]string(nil), r.names...) }

// Class returns the named class or an error wrapping ErrUnknownClass.
func (r *Registry) Class(name string) (Class, error) {
	c, ok := r.classes[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (have %v)", ErrUnknownClass, name, r.names)
	}
	return c, nil
}

// List returns the agents of one class, or of all classes when class is "".
func (r *Registry) List(ctx context.Context, class string) ([]AgentID, error) {
	names := r.names
	if class != "" {
		if _, err := r.Class(class); err != nil {
			return nil, err
		}
		names = []string{class}
	}
	var out []AgentID
	for _, n := range names {
		ids, err := r.classes[n].List(ctx)
		if err != nil {
			return out, fmt.Errorf("list %s agents: %w", n, err)
		}
		out = append(out, ids...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// MetaData returns an agent's parsed meta-data.
func (r *Registry) MetaData(ctx context.Context, id AgentID) (*MetaData, error) {
	c, err := r.Class(id.Class)
	if err != nil {
		return nil, err
	}
	return c.MetaData(ctx, id)
}

// Close closes every class that holds resources (io.Closer), e.g. builtin
// agents waiting for background ARP announcements or health checkers.
func (r *Registry) Close() error {
	var errs []error
	for _, n := range r.names {
		if c, ok := r.classes[n].(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// InterruptedResult is the Result for an operation whose ctx ended before
// the agent finished: StatusTimedOut when the cause is ErrTimedOut (or a
// deadline), StatusCancelled otherwise.
func InterruptedResult(ctx context.Context, timeout string) Result {
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrTimedOut) || errors.Is(cause, context.DeadlineExceeded) {
		reason := "timed out"
		if timeout != "" {
			reason += " after " + timeout
		}
		return Result{RC: RCErrGeneric, Status: StatusTimedOut, Reason: reason + " (process group killed)"}
	}
	return Result{RC: RCErrGeneric, Status: StatusCancelled, Reason: fmt.Sprintf("cancelled: %v", cause)}
}

// Builtin is an agent implemented in Go and run inside the calling process
// (no fork). It follows the OCF action and exit-code conventions.
//
// Exec is called with parameters already validated against MetaData and
// with defaults filled in. It may be called concurrently for different
// resources, never concurrently for the same resource when called through
// a Manager. It must honour ctx: the Manager reports the operation as timed
// out when ctx ends, but cannot kill a goroutine.
type Builtin interface {
	Type() string
	MetaData() *MetaData
	Exec(ctx context.Context, req Request) Result
}

// Builtins is the "builtin" class: a fixed set of Go agents.
type Builtins struct {
	agents map[string]Builtin
}

// NewBuiltins makes the builtin class from agents.
func NewBuiltins(agents ...Builtin) *Builtins {
	b := &Builtins{agents: make(map[string]Builtin)}
	for _, a := range agents {
		b.agents[a.Type()] = a
	}
	return b
}

// Name implements Class.
func (b *Builtins) Name() string { return "builtin" }

// Strict implements StrictClass: builtin meta-data is authoritative.
func (b *Builtins) Strict() bool { return true }

// List implements Class.
func (b *Builtins) List(context.Context) ([]AgentID, error) {
	var out []AgentID
	for t := range b.agents {
		out = append(out, AgentID{Class: "builtin", Type: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

func (b *Builtins) agent(id AgentID) (Builtin, error) {
	a, ok := b.agents[id.Type]
	if !ok || id.Class != "builtin" {
		return nil, fmt.Errorf("%w: %s", ErrNotInstalled, id)
	}
	return a, nil
}

// MetaData implements Class.
func (b *Builtins) MetaData(_ context.Context, id AgentID) (*MetaData, error) {
	a, err := b.agent(id)
	if err != nil {
		return nil, err
	}
	return a.MetaData(), nil
}

// Exec implements Class.
func (b *Builtins) Exec(ctx context.Context, req Request) Result {
	a, err := b.agent(req.Agent)
	if err != nil {
		return Result{RC: RCErrInstalled, Status: StatusNotInstalled, Reason: err.Error()}
	}
	md := a.MetaData()
	if req.Action == ActionMetaData {
		x, err := md.XML()
		if err != nil {
			return Result{RC: RCErrGeneric, Status: StatusDone, Reason: err.Error()}
		}
		return Result{RC: RCOK, Status: StatusDone, Stdout: string(x)}
	}
	req.Params = md.WithDefaults(req.Params)
	res := a.Exec(ctx, req)
	if ctx.Err() != nil && res.Status == StatusDone && !res.OK() {
		// The agent gave up because of ctx: report why.
		ir := InterruptedResult(ctx, req.Timeout.String())
		ir.Stdout, ir.Stderr = res.Stdout, res.Stderr
		if res.Reason != "" {
			ir.Reason += ": " + res.Reason
		}
		return ir
	}
	return res
}

// Close closes agents that hold background work (io.Closer).
func (b *Builtins) Close() error {
	var errs []error
	for _, a := range b.agents {
		if c, ok := a.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
