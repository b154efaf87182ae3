// Package wire is the resource manager's IPC protocol between local
// clients (ringctl, the crm_attribute personalities, clients/crm) and ringd's
// crm service (exec.ServiceCRM) and fencer (exec.ServiceStonith). Requests
// and replies are a version byte followed by JSON; message numbers are part
// of the protocol: append only.
package wire

import (
	"errors"
	"fmt"
	"time"

	"ringmaster/internal/versioned"
)

// ProtoVersion is the first byte of every payload.
const ProtoVersion = 1

// ErrMalformed: a payload that does not decode.
var ErrMalformed = errors.New("crm wire: malformed payload")

// Requests of the crm service (exec.ServiceCRM). Append only.
const (
	// ReqGetCIB: no body; reply: the CIB as XML (raw, no version byte).
	ReqGetCIB uint16 = 1
	// ReqReplaceConfig: ReplaceConfig; reply (once every node applied
	// it, or refused it): Applied. A CIB over ringd's limit (half the
	// ring's largest message: it travels in one) is refused at once with
	// ipc.CodeTooLarge.
	ReqReplaceConfig uint16 = 2
	// ReqSetAttribute: SetAttribute (a transient attribute of this node).
	ReqSetAttribute uint16 = 3
	// ReqCleanup: Cleanup.
	ReqCleanup uint16 = 4
	// ReqStatus: no body; reply: Status.
	ReqStatus uint16 = 5
	// ReqGetCIBGzip: no body; reply: the CIB as gzip-compressed XML
	// (raw, no version byte). A large cluster's status section can make
	// the XML larger than an IPC frame (ipc.MaxPayload), which
	// ReqGetCIB then refuses with ipc.CodeTooLarge; compressed it fits
	// many times over. Clients ask this first and fall back to
	// ReqGetCIB when ringd does not know it (ipc.CodeUnknownMessage).
	ReqGetCIBGzip uint16 = 6
)

// MaxCIBBytes bounds the uncompressed CIB a client accepts from
// ReqGetCIBGzip (a decompression bound, far above any real CIB).
const MaxCIBBytes = 256 << 20

// Requests of the fencer (exec.ServiceStonith). Append only.
const (
	// ReqFenceHistory: no body; reply: the history as a JSON list of
	// stonithd entries (raw, no version byte).
	ReqFenceHistory uint16 = 1
	// ReqFence: Fence; reply when the fencing ended: FenceReply.
	ReqFence uint16 = 2
)

// Version is a CIB version triple (admin_epoch, epoch, num_updates).
type Version struct {
	AdminEpoch int64 `json:"admin_epoch"`
	Epoch      int64 `json:"epoch"`
	NumUpdates int64 `json:"num_updates"`
}

// ReplaceConfig replaces the cluster's configuration with that of CIB.
// With Base set, the change applies only if the configuration is still at
// Base's (admin_epoch, epoch); otherwise every node refuses it and the
// reply says "conflict".
type ReplaceConfig struct {
	CIB  string   `json:"cib"`
	Base *Version `json:"base,omitempty"`
}

// Applied answers ReplaceConfig: the version now in effect.
type Applied struct {
	Version Version `json:"version"`
}

// Bounds of a transient attribute (ringd refuses larger ones: the value
// travels round the ring and lives in every node's CIB).
const (
	MaxAttrName  = 256
	MaxAttrValue = 64 << 10
)

// SetAttribute sets (or deletes) a transient node attribute of the local
// node (lifetime reboot, as crm_attribute -l reboot and attrd_updater).
type SetAttribute struct {
	Name   string `json:"name"`
	Value  string `json:"value,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

// Cleanup clears a resource's failures and history (on Node, or on every
// node when Node is empty) so that it is probed again.
type Cleanup struct {
	Resource string `json:"resource"`
	Node     string `json:"node,omitempty"`
}

// Status is the controller's view, as `ringctl crm status` shows it next
// to the CIB.
type Status struct {
	Node    uint32   `json:"node_id"`
	Name    string   `json:"node"`
	Members []uint32 `json:"members"`
	Synced  bool     `json:"synced"`
	Quorate bool     `json:"quorate"`
	// DC is the designated controller's node name ("" when none: the
	// partition is not quorate or not synced yet).
	DC   string `json:"dc"`
	DCID uint32 `json:"dc_id"`
	// Transition is the DC's running transition (0 when idle or not DC);
	// Pending its unfinished actions.
	Transition int     `json:"transition"`
	Pending    int     `json:"pending"`
	Version    Version `json:"version"`
	// Enabled is false when [resources] enabled = false: no controller.
	Enabled bool `json:"enabled"`
}

// Fence asks the fencer to fence Target (a node name) with Action
// (reboot, off, on).
type Fence struct {
	Target  string        `json:"target"`
	Action  string        `json:"action"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// FenceReply is the outcome of a Fence request.
type FenceReply struct {
	OK     bool   `json:"ok"`
	Device string `json:"device,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Encode is the version byte and the JSON of v.
func Encode(v any) []byte { return versioned.Encode(ProtoVersion, v) }

// Decode checks the version byte and decodes the JSON into v.
func Decode(p []byte, v any) error {
	if err := versioned.Decode(p, ProtoVersion, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// FenceEntry is one fencing history entry (stonithd.Entry's JSON).
type FenceEntry struct {
	ID          string    `json:"id"`
	Target      string    `json:"target"`
	Action      string    `json:"action"`
	Device      string    `json:"device"`
	Result      string    `json:"result"` // "success" or "failed"
	Time        time.Time `json:"time"`
	Started     time.Time `json:"started"`
	Origin      string    `json:"origin"`
	Executioner string    `json:"executioner"`
	Client      string    `json:"client,omitempty"`
	Reason      string    `json:"reason,omitempty"`
}
