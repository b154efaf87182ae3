package lvs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Backend programs virtual services into the kernel: desired state in,
// kernel state out. It is the narrow interface between the agent's logic
// and IPVS or nftables; implementations must be safe for concurrent use
// and must only touch the services they are asked about (several services
// share one kernel table).
type Backend interface {
	// Name is "ipvs", "nftables" or "fake".
	Name() string
	// Check reports (wrapping ErrUnsupported) why svc cannot be
	// expressed, e.g. a scheduler that needs per-connection state.
	Check(svc Service) error
	// Apply makes the kernel state of svc.Key equal to svc. It is
	// idempotent and atomic where the kernel allows it.
	Apply(ctx context.Context, svc Service) error
	// Remove deletes the service; an absent service is not an error.
	Remove(ctx context.Context, key Key) error
	// List reads back every service the backend manages.
	List(ctx context.Context) ([]Service, error)
	Close() error
}

// Render is the canonical text of a service, used by the Fake and in
// golden tests: one line for the service, one per destination.
func Render(s Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", s.Key, s.Scheduler, s.Method)
	if s.Persistence > 0 {
		fmt.Fprintf(&b, " persistent %d", s.Persistence)
	}
	if s.Masquerade {
		b.WriteString(" masquerade")
	}
	b.WriteByte('\n')
	for _, d := range s.Dests {
		fmt.Fprintf(&b, "  -> %s weight %d\n", d.Addr, d.Weight)
	}
	return b.String()
}

// Fake is a Backend that records the desired state as text, for unit
// tests of everything above the kernel.
type Fake struct {
	// Unsupported schedulers make Check fail, to mimic nftables.
	Unsupported map[string]bool

	mu      sync.Mutex
	svcs    map[Key]Service
	applies int
}

// NewFake returns an empty Fake.
func NewFake() *Fake { return &Fake{svcs: make(map[Key]Service)} }

// Name implements Backend.
func (f *Fake) Name() string { return "fake" }

// Check implements Backend.
func (f *Fake) Check(s Service) error {
	if f.Unsupported[s.Scheduler] {
		return fmt.Errorf("%w: scheduler %q", ErrUnsupported, s.Scheduler)
	}
	return nil
}

// Apply implements Backend.
func (f *Fake) Apply(_ context.Context, s Service) error {
	if err := f.Check(s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Dests = append([]Dest(nil), s.Dests...)
	f.svcs[s.Key] = s
	f.applies++
	return nil
}

// Remove implements Backend.
func (f *Fake) Remove(_ context.Context, k Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.svcs, k)
	return nil
}

// List implements Backend.
func (f *Fake) List(context.Context) ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Service, 0, len(f.svcs))
	for _, s := range f.svcs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out, nil
}

// Close implements Backend.
func (f *Fake) Close() error { return nil }

// Text renders every service, sorted.
func (f *Fake) Text() string {
	svcs, _ := f.List(context.Background())
	var b strings.Builder
	for _, s := range svcs {
		b.WriteString(Render(s))
	}
	return b.String()
}

// Applies counts Apply calls (re-applies after health changes).
func (f *Fake) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}
