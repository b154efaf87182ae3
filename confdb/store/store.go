// Package store is confdb's state machine: the typed key tree with change
// tracking and live sources (Store), and the rules for client writes
// (Policy), corosync's cmap semantics. It is pure: no IPC, no logging, no
// goroutines, no I/O; the confdb package's Service serves it over IPC and
// keeps the runtime.* keys up to date, as totem/ring drives totem/srp.
package store

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"ringmaster/confdb/wire"
)

// TrackID names a tracker of a Store.
type TrackID uint64

// TrackFunc receives the events of tracker id. It is called synchronously,
// in the order of the changes, with the store locked: it must not call
// back into the store and must not block.
type TrackFunc func(id TrackID, ev wire.Event)

type track struct {
	id     TrackID
	key    string
	prefix bool
	kinds  wire.EventKind
	fn     TrackFunc
}

func (t *track) matches(key string, k wire.EventKind) bool {
	if t.kinds&k == 0 {
		return false
	}
	if t.prefix {
		return strings.HasPrefix(key, t.key)
	}
	return key == t.key
}

// SourceFunc computes the live keys under a prefix when they are read
// (statistics): they are never stored and cannot be tracked.
type SourceFunc func() []wire.Entry

type source struct {
	prefix string
	fn     SourceFunc
}

// Store is the key-value tree. All methods are safe for concurrent use;
// changes and their tracking events are serialised in one order.
type Store struct {
	mu      sync.Mutex
	items   map[string]wire.Value
	tracks  []*track
	nextID  TrackID
	sources []source
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{items: map[string]wire.Value{}} }

// Get returns a key's value (stored or live).
func (s *Store) Get(key string) (wire.Value, error) {
	if src := s.sourceFor(key); src != nil {
		for _, e := range src.fn() {
			if e.Key == key {
				return e.Value, nil
			}
		}
		return wire.Value{}, fmt.Errorf("%w: %s", wire.ErrNotFound, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.items[key]
	if !ok {
		return wire.Value{}, fmt.Errorf("%w: %s", wire.ErrNotFound, key)
	}
	return v, nil
}

// Set stores a value without access checks (the daemon's own writes; the
// confdb Service checks a client's write with Policy first). Setting an unchanged value is
// not a change and notifies nobody, as in corosync.
func (s *Store) Set(key string, v wire.Value) error {
	if err := wire.CheckKey(key); err != nil {
		return err
	}
	if !v.Type().Valid() {
		return fmt.Errorf("%w: %s: no type", wire.ErrBadValue, key)
	}
	if err := wire.CheckSize(v); err != nil {
		return err
	}
	if s.sourceFor(key) != nil {
		return fmt.Errorf("%w: %s is computed when read", wire.ErrReadOnly, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[key]
	if ok && old == v {
		return nil
	}
	s.items[key] = v
	kind := wire.EventAdd
	if ok {
		kind = wire.EventModify
	}
	s.notify(wire.Event{Kind: kind, Key: key, Old: old, New: v})
	return nil
}

// Delete removes a key.
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[key]
	if !ok {
		return fmt.Errorf("%w: %s", wire.ErrNotFound, key)
	}
	delete(s.items, key)
	s.notify(wire.Event{Kind: wire.EventDelete, Key: key, Old: old})
	return nil
}

// DeletePrefix removes every stored key under prefix, in key order.
func (s *Store) DeletePrefix(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.items {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		old := s.items[k]
		delete(s.items, k)
		s.notify(wire.Event{Kind: wire.EventDelete, Key: k, Old: old})
	}
}

func (s *Store) notify(ev wire.Event) {
	for _, t := range s.tracks {
		if t.matches(ev.Key, ev.Kind) {
			t.fn(t.id, ev)
		}
	}
}

// List returns the keys under prefix ("" for all), stored and live,
// sorted by key.
func (s *Store) List(prefix string) []wire.Entry {
	s.mu.Lock()
	out := make([]wire.Entry, 0, len(s.items))
	for k, v := range s.items {
		if strings.HasPrefix(k, prefix) {
			out = append(out, wire.Entry{Key: k, Value: v})
		}
	}
	srcs := slices.Clone(s.sources)
	s.mu.Unlock()
	for _, src := range srcs {
		if !strings.HasPrefix(src.prefix, prefix) && !strings.HasPrefix(prefix, src.prefix) {
			continue
		}
		for _, e := range src.fn() {
			if strings.HasPrefix(e.Key, prefix) {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b wire.Entry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Track calls fn for every change of key (prefix false) or of any key
// starting with key (prefix true) whose kind is in kinds.
func (s *Store) Track(key string, prefix bool, kinds wire.EventKind, fn TrackFunc) TrackID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.tracks = append(s.tracks, &track{id: s.nextID, key: key, prefix: prefix, kinds: kinds, fn: fn})
	return s.nextID
}

// Untrack removes a tracker; it reports whether it existed.
func (s *Store) Untrack(id TrackID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.tracks)
	s.tracks = slices.DeleteFunc(s.tracks, func(t *track) bool { return t.id == id })
	return len(s.tracks) < n
}

// TrackCount is the number of trackers.
func (s *Store) TrackCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tracks)
}

// AddSource serves the keys under prefix from fn when read. fn runs
// without the store's lock held.
func (s *Store) AddSource(prefix string, fn SourceFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append(s.sources, source{prefix, fn})
}

func (s *Store) sourceFor(key string) *source {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.sources {
		if strings.HasPrefix(key, s.sources[i].prefix) {
			src := s.sources[i]
			return &src
		}
	}
	return nil
}

// IsSourced reports whether key is served live by a source.
func (s *Store) IsSourced(key string) bool { return s.sourceFor(key) != nil }
