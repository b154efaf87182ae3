package wire

import (
	"fmt"
	"strings"

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
