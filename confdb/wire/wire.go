// Package wire is the confdb wire format, shared by the confdb service in
// ringd, the clients/confdb library and ringctl: typed values and entries
// (corosync's cmap types), key names, change events, the IPC message
// numbers and payloads, and the error sentinels a reply maps to. It has no
// logic beyond encoding and validation, and every decoder rejects (never
// panics on) bad input; see the fuzz tests.
//
// Every payload, both ways, is ProtoVersion followed by JSON.
package wire

import (
	"fmt"
	"strings"

	"ringmaster/internal/versioned"
)

// Client messages (IPC requests to exec.ServiceConfdb), shared with
// clients/confdb. Numbers are part of the protocol: append only. Every
// payload, both ways, is ProtoVersion followed by JSON.
const (
	// MsgGet: KeyRequest; reply Entry.
	MsgGet uint16 = 1
	// MsgSet: Entry; empty reply.
	MsgSet uint16 = 2
	// MsgDelete: KeyRequest; empty reply.
	MsgDelete uint16 = 3
	// MsgList: ListRequest; reply []Entry sorted by key.
	MsgList uint16 = 4
	// MsgTrack: TrackRequest; reply TrackReply, then EventTrack events.
	MsgTrack uint16 = 5
	// MsgUntrack: UntrackRequest; empty reply.
	MsgUntrack uint16 = 6
)

// Events pushed to clients. Numbers are part of the protocol.
const (
	// EventTrack: a TrackEvent for a tracked key.
	EventTrack uint16 = 1
)

// ProtoVersion is the first byte of every payload.
const ProtoVersion byte = 1

// KeyRequest names one key.
type KeyRequest struct {
	Key string `json:"key"`
}

// ListRequest asks for the keys under a prefix ("" for all).
type ListRequest struct {
	Prefix string `json:"prefix"`
}

// TrackRequest asks for the changes of a key, or of all keys under a
// prefix, limited to Events ("add", "modify", "delete"; empty: all).
type TrackRequest struct {
	Key    string   `json:"key"`
	Prefix bool     `json:"prefix"`
	Events []string `json:"events,omitempty"`
}

// TrackReply names the new tracker.
type TrackReply struct {
	TrackID uint64 `json:"track_id"`
}

// UntrackRequest ends a tracker.
type UntrackRequest struct {
	TrackID uint64 `json:"track_id"`
}

// TrackEvent is one change of a tracked key: New is absent for a delete,
// Old for an add.
type TrackEvent struct {
	TrackID uint64 `json:"track_id"`
	Event   string `json:"event"`
	Key     string `json:"key"`
	New     *Value `json:"new,omitempty"`
	Old     *Value `json:"old,omitempty"`
}

// EncodePayload is ProtoVersion followed by v as JSON.
func EncodePayload(v any) []byte { return versioned.Encode(ProtoVersion, v) }

// DecodePayload checks the version byte and decodes the JSON into v.
func DecodePayload(p []byte, v any) error {
	if err := versioned.Decode(p, ProtoVersion, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	return nil
}

// DecodeKeyRequest decodes MsgGet and MsgDelete.
func DecodeKeyRequest(p []byte) (string, error) {
	var r KeyRequest
	if err := DecodePayload(p, &r); err != nil {
		return "", err
	}
	return r.Key, CheckKey(r.Key)
}

// DecodeSetRequest decodes MsgSet.
func DecodeSetRequest(p []byte) (Entry, error) {
	var e Entry
	if err := DecodePayload(p, &e); err != nil {
		return Entry{}, err
	}
	if err := CheckKey(e.Key); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// DecodeListRequest decodes MsgList.
func DecodeListRequest(p []byte) (string, error) {
	var r ListRequest
	if err := DecodePayload(p, &r); err != nil {
		return "", err
	}
	if len(r.Prefix) > MaxKeyLen {
		return "", fmt.Errorf("%w: prefix of %d characters", ErrInvalidKey, len(r.Prefix))
	}
	return r.Prefix, nil
}

// DecodeTrackRequest decodes MsgTrack into the key or prefix and the mask
// of event kinds.
func DecodeTrackRequest(p []byte) (string, bool, EventKind, error) {
	var r TrackRequest
	if err := DecodePayload(p, &r); err != nil {
		return "", false, 0, err
	}
	if r.Prefix {
		if len(r.Key) > MaxKeyLen {
			return "", false, 0, fmt.Errorf("%w: prefix of %d characters", ErrInvalidKey, len(r.Key))
		}
	} else if err := CheckKey(r.Key); err != nil {
		return "", false, 0, err
	}
	kinds := EventAll
	if len(r.Events) > 0 {
		kinds = 0
		for _, e := range r.Events {
			k, err := ParseEventKind(strings.ToLower(e))
			if err != nil {
				return "", false, 0, err
			}
			kinds |= k
		}
	}
	return r.Key, r.Prefix, kinds, nil
}

// DecodeTrackEvent decodes an EventTrack payload (client side).
func DecodeTrackEvent(p []byte) (TrackEvent, error) {
	var ev TrackEvent
	if err := DecodePayload(p, &ev); err != nil {
		return TrackEvent{}, err
	}
	if _, err := ParseEventKind(ev.Event); err != nil {
		return TrackEvent{}, err
	}
	if (ev.Event == "delete") != (ev.New == nil) {
		return TrackEvent{}, fmt.Errorf("%w: %s event with a new value: %v", ErrBadValue, ev.Event, ev.New != nil)
	}
	return ev, nil
}
