// Package cpg is the Go client of ringmaster's closed process groups
// (corosync's libcpg): join a named group, multicast to it in total order,
// and receive its messages and membership changes.
//
// A Client is one connection to the local ringd and is in at most one
// group at a time, like a cpg_handle_t. Open several clients for several
// groups.
//
// # Concurrency contract
//
// Every method may be called from any goroutine, concurrently. Requests
// are written in the order they are made and take effect in the group in
// that order (Join, Leave, Mcast). Events (the group's messages and
// configuration changes, see Event) arrive on the one channel returned by
// Events, or to Options.OnEvent, in the group's total order, which is the
// same on every node. The application must keep draining them: a client
// that stops reading stalls its own replies (they share the socket) and is
// cut off by ringd once its output budget is spent (64 MiB by default),
// which leaves the group with reason ProcDown; Err then says why the
// connection ended. The channel is closed when the connection ends.
//
// Mcast and McastBatch answers are not held behind the deliveries queued
// for this client (ringd sends them in a lane of their own), so a sender
// that is also a busy receiver keeps sending at full speed.
//
// # Flow control
//
// Mcast and McastBatch never block on the cluster: when ringd's send
// queue is full, or while the cluster re-synchronises after a membership
// change, they fail with ErrTryAgain (errors.Is) and nothing of that
// message was sent. Retry after draining some events (your own messages
// coming back are the natural pacing signal).
package cpg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"ringmaster/clients"
	"ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
	execwire "ringmaster/totem/exec/wire"
)

const service = uint16(execwire.ServiceCPG)

// Guarantee is a message's delivery guarantee (corosync's cpg_guarantee_t).
type Guarantee = totem.Guarantee

// Guarantees.
const (
	// Agreed: total order; delivered once every earlier message is.
	Agreed = totem.Agreed
	// FIFO is Agreed, as in corosync (total order implies per-sender FIFO).
	FIFO = totem.Agreed
	// Safe: delivered only once every node of the ring holds the message,
	// so a delivered message survives any single node's failure.
	Safe = totem.Safe
)

// Reason says why a process joined or left (corosync's numbering).
type Reason = wire.Reason

// Reasons.
const (
	ReasonJoin     = wire.ReasonJoin
	ReasonLeave    = wire.ReasonLeave
	ReasonNodeDown = wire.ReasonNodeDown
	ReasonNodeUp   = wire.ReasonNodeUp
	ReasonProcDown = wire.ReasonProcDown
)

// Address is a process in a group: its node, its pid and, in Left and
// Joined lists, the reason.
type Address = wire.Address

// Limits.
const (
	// MaxGroupName is the longest group name in bytes.
	MaxGroupName = wire.MaxGroupName
	// MaxMessageSize is the largest payload of one message; it is
	// delivered atomically (all of it or nothing).
	MaxMessageSize = wire.MaxData
)

// Sentinels (errors.Is). ErrTryAgain is totem.ErrTryAgain.
var (
	ErrTryAgain = ipc.ErrTryAgain
	// ErrNotJoined: Mcast or Leave outside a group (ringd's "not found").
	ErrNotJoined = ipc.ErrNotFound
	// ErrExists: Join on a client already in a group, or a pid already in
	// that group on this node.
	ErrExists = ipc.ErrExists
	// ErrInvalid: a bad group name or request.
	ErrInvalid = ipc.ErrInvalid
	// ErrTooLarge: a payload above MaxMessageSize.
	ErrTooLarge = totem.ErrTooLarge
)

// EventKind tells what an Event carries.
type EventKind uint8

// Event kinds.
const (
	// EventMessage: a message of the group (Group, Sender, Guarantee, Data).
	EventMessage EventKind = iota + 1
	// EventConfChg: the group's membership changed (Group, Members, Left,
	// Joined), like corosync's cpg_confchg_fn_t. The first one after Join
	// has this client in Joined.
	EventConfChg
	// EventTotemConf: the node's ring changed (Ring, Nodes), like
	// corosync's model-v1 totem confchg; one follows the first ConfChg
	// of a Join, and one each membership change after that.
	EventTotemConf
)

func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventConfChg:
		return "confchg"
	case EventTotemConf:
		return "totem"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one item of a client's event stream. It is a value (no
// allocation per message beyond the payload); the fields that matter
// depend on Kind.
type Event struct {
	Kind  EventKind
	Group string

	// EventMessage
	Sender    Address // NodeID and PID of the sender
	Guarantee Guarantee
	Data      []byte // owned by the receiver

	// EventConfChg
	Members []Address
	Left    []Address
	Joined  []Address

	// EventTotemConf
	Ring  totem.RingID
	Nodes []totem.NodeID
}

// Group is a group and its members (Groups).
type Group = wire.Group

// TotemConf is the node's current ring as CPG sees it.
type TotemConf = wire.TotemConf

// Options tune a Client.
type Options struct {
	// PID is the pid this client presents as its identity in groups;
	// 0 (the default) means the process's own pid, which ringd reads
	// from the socket. Only (node, pid, group) must be unique, so a
	// process that joins one group through several clients (a load
	// generator) gives each a different PID, as libcpg callers can.
	PID uint32
	// EventBuffer is the capacity of the event channel (default 4096).
	EventBuffer int
	// OnEvent, when set, is called with every event instead of sending
	// it on the Events channel (which then only closes when the
	// connection ends), like libcpg's callbacks but on the connection's
	// reader goroutine: in order, never concurrently, and without the
	// channel's goroutine hop. It must return quickly (replies to this
	// client's requests are read by the same goroutine) and must not call
	// the Client's methods that wait for ringd.
	OnEvent func(Event)
}

// Client is a connection to ringd's CPG service.
type Client struct {
	conn   *clients.Conn
	ipc    *ipc.Client
	opt    Options
	events chan Event

	mu    sync.Mutex
	group string // the group joined, "" when none
}

// Dial connects to ringd's socket.
func Dial(ctx context.Context, socket string) (*Client, error) {
	return DialOptions(ctx, socket, Options{})
}

// DialOptions is Dial with options.
func DialOptions(ctx context.Context, socket string, o Options) (*Client, error) {
	if o.EventBuffer <= 0 {
		o.EventBuffer = 4096
	}
	c := &Client{opt: o, events: make(chan Event, o.EventBuffer)}
	ready := make(chan struct{}) // c.ipc is set
	deliver := o.OnEvent
	if deliver == nil {
		deliver = func(e Event) {
			<-ready
			select {
			case c.events <- e:
			case <-c.ipc.Done():
			}
		}
	}
	var name string // last group name seen, so deliveries share one string
	// Events are decoded on the connection's reader goroutine: one hop
	// less than a decoding goroutine of our own.
	ic, err := ipc.DialOptions(ctx, socket, ipc.ClientOptions{EventBuffer: 1, OnEvent: func(ev ipc.Event) {
		if e, ok := decodeEvent(ev, &name); ok {
			deliver(e)
		}
	}})
	if err != nil {
		close(ready)
		return nil, err
	}
	c.ipc = ic
	c.conn = &clients.Conn{Client: ic}
	close(ready)
	go func() {
		// ipc closes its (unused) channel once its reader has
		// stopped calling OnEvent: nothing can be sent on ours after.
		for range ic.Events() {
		}
		close(c.events)
	}()
	return c, nil
}

// Events is the event stream (see the package comment); closed when the
// connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Conn is the underlying connection, for the calls of other services on
// the same socket (e.g. Status).
func (c *Client) Conn() *clients.Conn { return c.conn }

// Done is closed when the connection has ended; Err says why.
func (c *Client) Done() <-chan struct{} { return c.ipc.Done() }

// Err is why the connection ended (nil while it is up); errors.Is(err,
// ipc.ErrSlowClient) when ringd cut it off for not reading its events.
func (c *Client) Err() error { return c.ipc.Err() }

// Close disconnects; if the client was in a group it leaves with reason
// ProcDown. Events not yet read are dropped.
func (c *Client) Close() error { return c.ipc.Close() }

// decodeEvent turns an ipc event of the service into an Event; name
// caches the group name so deliveries of one group share a string.
func decodeEvent(ev ipc.Event, name *string) (Event, bool) {
	if ev.Service != service {
		return Event{}, false
	}
	switch ev.Msg {
	case wire.EvDeliver:
		r, err := wire.ParseRecord(ev.Payload)
		if err != nil {
			return Event{}, false
		}
		if string(r.Name) != *name {
			*name = string(r.Name)
		}
		return Event{Kind: EventMessage, Group: *name, Sender: Address{NodeID: r.NodeID, PID: r.PID}, Guarantee: r.Guarantee, Data: r.Data}, true
	case wire.EvConfChg:
		cc, err := wire.ParseConfChg(ev.Payload)
		if err != nil {
			return Event{}, false
		}
		return Event{Kind: EventConfChg, Group: cc.Name, Members: cc.Members, Left: cc.Left, Joined: cc.Joined}, true
	case wire.EvTotemConf:
		tc, err := wire.ParseTotemConf(ev.Payload)
		if err != nil {
			return Event{}, false
		}
		return Event{Kind: EventTotemConf, Ring: tc.Ring, Nodes: tc.Members}, true
	}
	return Event{}, false
}

func (c *Client) call(ctx context.Context, msg uint16, p []byte) ([]byte, error) {
	return c.ipc.Call(ctx, service, msg, p)
}

// Join joins group (1..MaxGroupName bytes). It returns once ringd has
// multicast the join; the first EventConfChg (this client in Joined)
// marks when the group has seen it. Messages may be sent at once.
func (c *Client) Join(ctx context.Context, group string) error {
	if err := wire.CheckName([]byte(group)); err != nil {
		return fmt.Errorf("cpg join: %w: %w", ErrInvalid, err)
	}
	if _, err := c.call(ctx, wire.ReqJoin, wire.AppendJoinReq(nil, wire.JoinReq{Name: group, PID: c.opt.PID})); err != nil {
		return fmt.Errorf("cpg join %q: %w", group, err)
	}
	c.mu.Lock()
	c.group = group
	c.mu.Unlock()
	return nil
}

// Leave leaves the group. Messages keep arriving until the EventConfChg
// with this client in Left.
func (c *Client) Leave(ctx context.Context) error {
	if _, err := c.call(ctx, wire.ReqLeave, nil); err != nil {
		return fmt.Errorf("cpg leave: %w", err)
	}
	c.mu.Lock()
	c.group = ""
	c.mu.Unlock()
	return nil
}

func (c *Client) joined() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.group == "" {
		return "", fmt.Errorf("cpg: not in a group: %w", ErrNotJoined)
	}
	return c.group, nil
}

// Mcast multicasts payload to the group with guarantee g. It returns once
// ringd has queued it on the ring (not when it is delivered: watch for it
// on Events). ErrTryAgain: nothing was sent, retry later.
func (c *Client) Mcast(ctx context.Context, g Guarantee, payload []byte) error {
	group, err := c.joined()
	if err != nil {
		return err
	}
	if len(payload) > MaxMessageSize {
		return fmt.Errorf("cpg mcast: %w: %d bytes (max %d)", ErrTooLarge, len(payload), MaxMessageSize)
	}
	ch := c.ipc.GoAppend(service, wire.ReqMcast, func(b []byte) []byte {
		return wire.AppendRecord(b, g, 0, 0, []byte(group), payload)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return fmt.Errorf("cpg mcast: %w", r.Err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// McastBatch multicasts payloads in order with guarantee g, in as few IPC
// round trips as their size allows (one per MiB or so). It returns how many
// were sent; when that is fewer than len(payloads) the error says why the
// next one was not (ErrTryAgain: ringd's queue filled up, retry the rest
// later). Payloads after the first failure are never sent, so order is
// kept; none is silently dropped.
func (c *Client) McastBatch(ctx context.Context, g Guarantee, payloads [][]byte) (sent int, err error) {
	group, err := c.joined()
	if err != nil {
		return 0, err
	}
	name := []byte(group)
	for sent < len(payloads) {
		if p := payloads[sent]; len(p) > MaxMessageSize {
			return sent, fmt.Errorf("cpg mcast: %w: %d bytes (max %d)", ErrTooLarge, len(p), MaxMessageSize)
		}
		// As many as fit one request, written straight into the
		// connection's buffer.
		n, size := 0, wire.BatchHeaderSize
		for _, p := range payloads[sent:] {
			rs := 4 + wire.RecordSize(len(name), len(p))
			if len(p) > MaxMessageSize || n > 0 && size+rs > ipc.MaxPayload {
				break
			}
			n, size = n+1, size+rs
		}
		batch := payloads[sent : sent+n]
		ch := c.ipc.GoAppend(service, wire.ReqMcastBatch, func(b []byte) []byte {
			b = wire.AppendBatchHeader(b, len(batch))
			for _, p := range batch {
				b = wire.AppendBatchRecord(b, g, 0, 0, name, p)
			}
			return b
		})
		var r ipc.Result
		select {
		case r = <-ch:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
		if r.Err != nil {
			return sent, fmt.Errorf("cpg mcast: %w", r.Err)
		}
		br, err := wire.ParseBatchReply(r.Payload)
		if err != nil {
			return sent, fmt.Errorf("cpg mcast: bad reply: %w", err)
		}
		sent += br.Sent
		if br.Code != 0 {
			return sent, fmt.Errorf("cpg mcast: %w", &ipc.Error{Code: ipc.Code(br.Code), Msg: br.Msg})
		}
		if br.Sent != n {
			return sent, fmt.Errorf("cpg mcast: ringd sent %d of %d without saying why", br.Sent, n)
		}
	}
	return sent, nil
}

// Members is the current membership of group (empty when nobody is in
// it), sorted by node ID then pid.
func (c *Client) Members(ctx context.Context, group string) ([]Address, error) {
	if err := wire.CheckName([]byte(group)); err != nil {
		return nil, fmt.Errorf("cpg members: %w: %w", ErrInvalid, err)
	}
	p, err := c.call(ctx, wire.ReqMembers, wire.AppendName(nil, group))
	if err != nil {
		return nil, fmt.Errorf("cpg members: %w", err)
	}
	return wire.ParseAddrList(p)
}

// LocalNodeID is the node ID of the ringd this client is connected to.
func (c *Client) LocalNodeID(ctx context.Context) (totem.NodeID, error) {
	p, err := c.call(ctx, wire.ReqLocalNodeID, nil)
	if err != nil {
		return 0, fmt.Errorf("cpg local node id: %w", err)
	}
	v, err := wire.ParseU32(p)
	return totem.NodeID(v), err
}

// Groups lists every group of the cluster with its members, sorted by
// name (corosync's cpg_iteration, as corosync-cpgtool shows it).
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	p, err := c.call(ctx, wire.ReqGroups, nil)
	if err != nil {
		return nil, fmt.Errorf("cpg groups: %w", err)
	}
	gs, err := wire.ParseGroups(p)
	if err != nil {
		return nil, fmt.Errorf("cpg groups: bad reply: %w", err)
	}
	return slices.Clip(gs), nil
}

// TotemConf is the node's current ring (ID and member nodes).
func (c *Client) TotemConf(ctx context.Context) (TotemConf, error) {
	p, err := c.call(ctx, wire.ReqTotemConf, nil)
	if err != nil {
		return TotemConf{}, fmt.Errorf("cpg totem conf: %w", err)
	}
	return wire.ParseTotemConf(p)
}

// IsTryAgain reports whether err means "retry later".
func IsTryAgain(err error) bool { return errors.Is(err, ErrTryAgain) }
