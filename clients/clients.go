// Package clients is the Go client library of ringmaster: Dial connects to
// a node's ringd over its Unix socket; the subpackages (cpg, quorum,
// confdb) add each service's API on top of the same connection type.
//
// A Conn may be used from many goroutines at once. Calls honour their
// context; events of subscribed services arrive on the connection's event
// stream and must be drained (see ipc.Client).
package clients

import (
	"context"
	"encoding/json"
	"fmt"

	"ringmaster/ipc"
	execwire "ringmaster/totem/exec/wire"
)

// ServiceStatus is the IPC service number of node status.
const ServiceStatus = uint16(execwire.ServiceStatus)

// Status service messages. Numbers are part of the protocol: append only.
const (
	MsgStatus uint16 = 1
	// MsgEvents: payload a JSON events.Query; reply a JSON events.Reply
	// (the node's event log; `ringctl events`).
	MsgEvents uint16 = 2
)

// Conn is a connection to one ringd.
type Conn struct {
	*ipc.Client
}

// Dial connects to ringd's socket.
func Dial(ctx context.Context, socket string) (*Conn, error) {
	c, err := ipc.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	return &Conn{Client: c}, nil
}

// Member is a node of the ring as shown to operators.
type Member struct {
	NodeID uint32 `json:"nodeid"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
}

// RingID is the (representative, sequence) pair naming a ring.
type RingID struct {
	Rep uint32 `json:"rep"`
	Seq uint64 `json:"seq"`
}

// Status is `ringctl status --json`.
type Status struct {
	NodeID      uint32            `json:"node_id"`
	Name        string            `json:"name"`
	ClusterName string            `json:"cluster_name"`
	Version     string            `json:"version"`
	Transport   string            `json:"transport"`
	RingID      RingID            `json:"ring_id"`
	State       string            `json:"state"`
	Members     []Member          `json:"members"`
	Quorate     *bool             `json:"quorate,omitempty"`
	Synced      bool              `json:"synced"`
	TokenMS     int64             `json:"token_ms"`
	ConsensusMS int64             `json:"consensus_ms"`
	Effective   map[string]int64  `json:"effective"`
	Counters    map[string]uint64 `json:"counters"`
	UptimeS     float64           `json:"uptime_s"`
	// PendingRestart lists settings changed in the file by a reload that
	// take effect only after a restart (dotted keys); every other field
	// reports the running values.
	PendingRestart []string `json:"pending_restart,omitempty"`
	// LinkMode and Links: with redundant links (ring1_addr …), the
	// policy and every link to every other node as its heartbeats see
	// it (corosync-cfgtool -n); absent with one link.
	LinkMode string     `json:"link_mode,omitempty"`
	Links    []PeerLink `json:"links,omitempty"`
}

// PeerLink is one link to one peer.
type PeerLink struct {
	NodeID uint32  `json:"nodeid"`
	Name   string  `json:"name"`
	Link   int     `json:"link"`
	State  string  `json:"state"` // "up" or "down"
	Local  string  `json:"local"`
	Remote string  `json:"remote"`
	RTTMS  float64 `json:"rtt_ms"` // of the last heartbeat answered
	Ups    uint64  `json:"up_events"`
	Downs  uint64  `json:"down_events"`
}

// Status asks the node for its status.
func (c *Conn) Status(ctx context.Context) (*Status, error) {
	p, err := c.Call(ctx, ServiceStatus, MsgStatus, nil)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(p, &s); err != nil {
		return nil, fmt.Errorf("status: bad reply: %w", err)
	}
	return &s, nil
}
