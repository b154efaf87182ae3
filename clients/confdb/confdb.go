// Package confdb is the Go client of ringmaster's confdb service
// (corosync's libcmap): get, set, delete and list typed keys of the local
// node and track their changes.
//
// # Concurrency contract
//
// Every method may be called from any goroutine. Once Track is called the
// Client owns its connection's event stream (events of other services on
// it are discarded): dial one connection per tracking client (Dial does).
// Events of all trackers of a Client arrive in the order the changes
// happened on the node.
package confdb

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"ringmaster/clients"
	"ringmaster/confdb/wire"
	"ringmaster/ipc"
	execwire "ringmaster/totem/exec/wire"
)

const service = uint16(execwire.ServiceConfdb)

// Types of the wire format, named here for callers.
type (
	Entry     = wire.Entry
	Value     = wire.Value
	Type      = wire.Type
	Event     = wire.Event
	EventKind = wire.EventKind
)

// Sentinels (errors.Is) of confdb: a reply error matches the sentinel of
// its class.
var (
	ErrNotFound = wire.ErrNotFound
	ErrReadOnly = wire.ErrReadOnly
	ErrInvalid  = ipc.ErrInvalid
)

// Client is one connection to ringd's confdb service.
type Client struct {
	conn  *clients.Conn
	owned bool

	mu       sync.Mutex
	trackers map[uint64]*Tracker
	early    map[uint64][]Event // events that raced ahead of their Track reply
	pumping  bool
}

// Dial connects to ringd's socket.
func Dial(ctx context.Context, socket string) (*Client, error) {
	c, err := clients.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, owned: true, trackers: map[uint64]*Tracker{}, early: map[uint64][]Event{}}, nil
}

// New uses an existing connection (not closed by Close).
func New(c *clients.Conn) *Client {
	return &Client{conn: c, trackers: map[uint64]*Tracker{}, early: map[uint64][]Event{}}
}

// Close ends the connection if the Client opened it.
func (c *Client) Close() error {
	if c.owned {
		return c.conn.Close()
	}
	return nil
}

// remoteError is an error reply: its text is ringd's, and it matches both
// the confdb sentinel of its class and the ipc one.
type remoteError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return []error{e.sentinel, e.cause} }

func mapErr(err error) error {
	var ie *ipc.Error
	if !errors.As(err, &ie) {
		return err
	}
	switch {
	case errors.Is(err, ipc.ErrNotFound):
		return &remoteError{ie.Msg, ErrNotFound, err}
	case errors.Is(err, ipc.ErrAccess):
		return &remoteError{ie.Msg, ErrReadOnly, err}
	case errors.Is(err, ipc.ErrInvalid):
		return &remoteError{ie.Msg, wire.ErrBadValue, err}
	}
	return err
}

func (c *Client) call(ctx context.Context, msg uint16, req, reply any) error {
	r, err := c.conn.Call(ctx, service, msg, wire.EncodePayload(req))
	if err != nil {
		return mapErr(err)
	}
	if reply == nil {
		return nil
	}
	if err := wire.DecodePayload(r, reply); err != nil {
		return fmt.Errorf("confdb: bad reply: %w", err)
	}
	return nil
}

// Get reads a key.
func (c *Client) Get(ctx context.Context, key string) (Entry, error) {
	var e Entry
	err := c.call(ctx, wire.MsgGet, wire.KeyRequest{Key: key}, &e)
	return e, err
}

// Set writes a key (ErrReadOnly for keys ringd maintains).
func (c *Client) Set(ctx context.Context, key string, v Value) error {
	return c.call(ctx, wire.MsgSet, Entry{Key: key, Value: v}, nil)
}

// Delete removes a key.
func (c *Client) Delete(ctx context.Context, key string) error {
	return c.call(ctx, wire.MsgDelete, wire.KeyRequest{Key: key}, nil)
}

// List returns the keys under prefix ("" for all), sorted.
func (c *Client) List(ctx context.Context, prefix string) ([]Entry, error) {
	var es []Entry
	err := c.call(ctx, wire.MsgList, wire.ListRequest{Prefix: prefix}, &es)
	return es, err
}

// earlyMax bounds the events kept for a tracker whose Track reply has not
// been read yet (and is its channel's buffer).
const earlyMax = 256

// Tracker is a stream of changes of tracked keys.
type Tracker struct {
	c    *Client
	id   uint64
	ch   chan Event
	once sync.Once
}

// Track follows every change of the keys under prefix (an empty prefix:
// all keys).
func (c *Client) Track(ctx context.Context, prefix string) (*Tracker, error) {
	return c.track(ctx, wire.TrackRequest{Key: prefix, Prefix: true})
}

// TrackKey follows the changes of one key, limited to kinds.
func (c *Client) TrackKey(ctx context.Context, key string, kinds EventKind) (*Tracker, error) {
	req := wire.TrackRequest{Key: key}
	for _, k := range []EventKind{wire.EventAdd, wire.EventModify, wire.EventDelete} {
		if kinds&k != 0 {
			req.Events = append(req.Events, k.String())
		}
	}
	return c.track(ctx, req)
}

func (c *Client) track(ctx context.Context, req wire.TrackRequest) (*Tracker, error) {
	c.startPump()
	var r wire.TrackReply
	if err := c.call(ctx, wire.MsgTrack, req, &r); err != nil {
		return nil, err
	}
	t := &Tracker{c: c, id: r.TrackID, ch: make(chan Event, earlyMax)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.early[t.id] {
		t.ch <- ev // fits: at most earlyMax were kept, the channel is new
	}
	delete(c.early, t.id)
	c.trackers[t.id] = t
	return t, nil
}

// startPump routes the connection's events to the trackers.
// decodeEvent decodes a track event into its tracker's ID and the Event;
// false for another event or a malformed one.
func decodeEvent(ev ipc.Event) (uint64, Event, bool) {
	if ev.Service != service || ev.Msg != wire.EventTrack {
		return 0, Event{}, false
	}
	te, err := wire.DecodeTrackEvent(ev.Payload)
	if err != nil {
		return 0, Event{}, false
	}
	e := Event{Key: te.Key}
	e.Kind, _ = wire.ParseEventKind(te.Event)
	if te.New != nil {
		e.New = *te.New
	}
	if te.Old != nil {
		e.Old = *te.Old
	}
	return te.TrackID, e, true
}

func (c *Client) startPump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pumping {
		return
	}
	c.pumping = true
	go func() {
		for ev := range c.conn.Events() {
			id, e, ok := decodeEvent(ev)
			if !ok {
				continue
			}
			c.mu.Lock()
			t := c.trackers[id]
			if t == nil {
				if len(c.early[id]) < earlyMax {
					c.early[id] = append(c.early[id], e)
				}
				c.mu.Unlock()
				continue
			}
			c.mu.Unlock()
			t.ch <- e // blocks when the application does not drain C
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for id, t := range c.trackers {
			close(t.ch)
			delete(c.trackers, id)
		}
	}()
}

// C is the stream of events; it is closed when the connection ends. Stop
// leaves it open (events still queued may be read) but no new ones come.
func (t *Tracker) C() <-chan Event { return t.ch }

// Stop ends the tracker on ringd.
func (t *Tracker) Stop(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		err = t.c.call(ctx, wire.MsgUntrack, wire.UntrackRequest{TrackID: t.id}, nil)
		t.c.mu.Lock()
		delete(t.c.trackers, t.id)
		t.c.mu.Unlock()
	})
	return err
}
