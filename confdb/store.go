// Package confdb is ringmaster's runtime key-value store, corosync's cmap
// (openais confdb): a typed tree of dotted keys per node, loaded with the
// configuration and the derived runtime values, updated from the ring
// (members, quorum, statistics) and writable by clients within corosync's
// rules, with change tracking.
//
// Like cmap it is local to each node and not replicated: the service has
// no ring messages, it only reflects ring state. The Store is pure (no I/O,
// no goroutines); the Service is the executive service that serves it over
// IPC and keeps the runtime.* keys up to date.
package confdb

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"ringmaster/ipc"
)

// Sentinel errors (errors.Is). Each also matches the ipc sentinel of its
// class, so a reply carries the right error code and a client can test
// either.
var (
	ErrNotFound   error = &sentinel{"confdb: no such key", ipc.ErrNotFound}
	ErrReadOnly   error = &sentinel{"confdb: read-only key", ipc.ErrAccess}
	ErrInvalidKey error = &sentinel{"confdb: invalid key name", ipc.ErrInvalid}
	ErrBadValue   error = &sentinel{"confdb: invalid value", ipc.ErrInvalid}
	ErrNoTrack    error = &sentinel{"confdb: no such track", ipc.ErrNotFound}
)

type sentinel struct {
	msg   string
	class error
}

func (e *sentinel) Error() string        { return e.msg }
func (e *sentinel) Is(target error) bool { return target == e.class }

// Key names follow corosync: 3 to 255 characters out of letters, digits
// and "._/-:".
const (
	MinKeyLen = 3
	MaxKeyLen = 255
)

// CheckKey validates a key name.
func CheckKey(key string) error {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %q must be %d-%d characters", ErrInvalidKey, key, MinKeyLen, MaxKeyLen)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-:", r)) {
			return fmt.Errorf("%w: %q has %q (letters, digits and ._/-: only)", ErrInvalidKey, key, r)
		}
	}
	return nil
}

// EventKind is what happened to a tracked key. Bits are corosync's
// CMAP_TRACK_* and part of the protocol.
type EventKind uint8

// Event kinds, combinable as a mask when tracking.
const (
	EventDelete EventKind = 1
	EventModify EventKind = 2
	EventAdd    EventKind = 4
	EventAll              = EventAdd | EventModify | EventDelete
)

func (k EventKind) String() string {
	switch k {
	case EventAdd:
		return "add"
	case EventModify:
		return "modify"
	case EventDelete:
		return "delete"
	}
	return fmt.Sprintf("events(%d)", uint8(k))
}

// ParseEventKind reads "add", "modify" or "delete".
func ParseEventKind(s string) (EventKind, error) {
	switch s {
	case "add":
		return EventAdd, nil
	case "modify":
		return EventModify, nil
	case "delete":
		return EventDelete, nil
	}
	return 0, fmt.Errorf("%w: unknown event %q", ErrBadValue, s)
}

// Event is one change of a key. Old is zero for an add, New for a delete.
type Event struct {
	Kind EventKind
	Key  string
	Old  Value
	New  Value
}

// TrackID names a tracker of a Store.
type TrackID uint64

// TrackFunc receives the events of tracker id. It is called synchronously,
// in the order of the changes, with the store locked: it must not call
// back into the store and must not block.
type TrackFunc func(id TrackID, ev Event)

type track struct {
	id     TrackID
	key    string
	prefix bool
	kinds  EventKind
	fn     TrackFunc
}

func (t *track) matches(key string, k EventKind) bool {
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
type SourceFunc func() []Entry

type source struct {
	prefix string
	fn     SourceFunc
}

// Store is the key-value tree. All methods are safe for concurrent use;
// changes and their tracking events are serialised in one order.
type Store struct {
	mu      sync.Mutex
	items   map[string]Value
	tracks  []*track
	nextID  TrackID
	sources []source
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{items: map[string]Value{}} }

// Get returns a key's value (stored or live).
func (s *Store) Get(key string) (Value, error) {
	if src := s.sourceFor(key); src != nil {
		for _, e := range src.fn() {
			if e.Key == key {
				return e.Value, nil
			}
		}
		return Value{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.items[key]
	if !ok {
		return Value{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return v, nil
}

// Set stores a value without access checks (the daemon's own writes; the
// Service applies the client rules first). Setting an unchanged value is
// not a change and notifies nobody, as in corosync.
func (s *Store) Set(key string, v Value) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if !v.typ.Valid() {
		return fmt.Errorf("%w: %s: no type", ErrBadValue, key)
	}
	if _, err := checkSize(v); err != nil {
		return err
	}
	if s.sourceFor(key) != nil {
		return fmt.Errorf("%w: %s is computed when read", ErrReadOnly, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[key]
	if ok && old == v {
		return nil
	}
	s.items[key] = v
	kind := EventAdd
	if ok {
		kind = EventModify
	}
	s.notify(Event{Kind: kind, Key: key, Old: old, New: v})
	return nil
}

// Delete removes a key.
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[key]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	delete(s.items, key)
	s.notify(Event{Kind: EventDelete, Key: key, Old: old})
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
		s.notify(Event{Kind: EventDelete, Key: k, Old: old})
	}
}

func (s *Store) notify(ev Event) {
	for _, t := range s.tracks {
		if t.matches(ev.Key, ev.Kind) {
			t.fn(t.id, ev)
		}
	}
}

// List returns the keys under prefix ("" for all), stored and live,
// sorted by key.
func (s *Store) List(prefix string) []Entry {
	s.mu.Lock()
	out := make([]Entry, 0, len(s.items))
	for k, v := range s.items {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{k, v})
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
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Track calls fn for every change of key (prefix false) or of any key
// starting with key (prefix true) whose kind is in kinds.
func (s *Store) Track(key string, prefix bool, kinds EventKind, fn TrackFunc) TrackID {
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
