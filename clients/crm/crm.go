// Package crm is the Go client of ringmaster's resource manager: read the
// cluster's CIB and the controller's status, replace the configuration
// (with optimistic concurrency on the CIB version), set this node's
// transient attributes, clean up resources, and fence nodes or read the
// fencing history. ringctl's `crm` and `stonith` commands and its
// crm_attribute personalities use it.
//
// Every method may be called from any goroutine.
package crm

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"ringmaster/clients"
	"ringmaster/crm/cib"
	"ringmaster/crm/wire"
	"ringmaster/ipc"
	execwire "ringmaster/totem/exec/wire"
)

const (
	serviceCRM     = uint16(execwire.ServiceCRM)
	serviceStonith = uint16(execwire.ServiceStonith)
)

// Sentinels (errors.Is).
var (
	// ErrConflict: the configuration changed since the version the
	// change was based on; re-read and retry.
	ErrConflict = ipc.ErrExists
	// ErrDisabled: ringd runs without the resource manager
	// ([resources] enabled = false, or an older ringd).
	ErrDisabled = errors.New("ringd runs without the resource manager ([resources] enabled = false)")
	// ErrInvalid: ringd refused the request (a CIB that does not parse,
	// an unknown action).
	ErrInvalid = ipc.ErrInvalid
)

// Client is one connection to ringd's resource manager.
type Client struct {
	conn  *clients.Conn
	owned bool
}

// Dial connects to ringd's socket.
func Dial(ctx context.Context, socket string) (*Client, error) {
	c, err := clients.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, owned: true}, nil
}

// New uses an existing connection (not closed by Close).
func New(c *clients.Conn) *Client { return &Client{conn: c} }

// Close ends the connection if the Client opened it.
func (c *Client) Close() error {
	if c.owned {
		return c.conn.Close()
	}
	return nil
}

func (c *Client) call(ctx context.Context, svc, msg uint16, req any) ([]byte, error) {
	var p []byte
	if req != nil {
		p = wire.Encode(req)
	}
	r, err := c.conn.Call(ctx, svc, msg, p)
	if errors.Is(err, ipc.ErrUnknown) {
		return nil, fmt.Errorf("%w: %v", ErrDisabled, err)
	}
	return r, err
}

// CIB returns the cluster's CIB as this node holds it.
func (c *Client) CIB(ctx context.Context) (*cib.CIB, error) {
	b, err := c.CIBXML(ctx)
	if err != nil {
		return nil, err
	}
	x, err := cib.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("crm: the CIB from ringd does not parse: %w", err)
	}
	return x, nil
}

// CIBXML returns the CIB's XML. It asks for it compressed (a large
// cluster's status can exceed an IPC frame) and, from a ringd that does
// not know that request, as plain XML.
func (c *Client) CIBXML(ctx context.Context) ([]byte, error) {
	z, err := c.conn.Call(ctx, serviceCRM, wire.ReqGetCIBGzip, nil)
	var ie *ipc.Error
	if errors.As(err, &ie) && ie.Code == ipc.CodeUnknownMessage {
		return c.call(ctx, serviceCRM, wire.ReqGetCIB, nil)
	}
	if errors.Is(err, ipc.ErrUnknown) {
		return nil, fmt.Errorf("%w: %v", ErrDisabled, err)
	}
	if err != nil {
		return nil, err
	}
	return gunzipCIB(z)
}

// gunzipCIB decompresses a ReqGetCIBGzip reply, at most wire.MaxCIBBytes.
func gunzipCIB(z []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("crm: the CIB from ringd: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, wire.MaxCIBBytes+1))
	if err != nil {
		return nil, fmt.Errorf("crm: the CIB from ringd: %w", err)
	}
	if len(b) > wire.MaxCIBBytes {
		return nil, fmt.Errorf("crm: the CIB from ringd is over %d bytes uncompressed", wire.MaxCIBBytes)
	}
	return b, nil
}

// ReplaceConfig replaces the configuration with the <configuration> of
// cibXML and returns once every node applied it. With base set it applies
// only if the configuration is still at that version (else ErrConflict).
func (c *Client) ReplaceConfig(ctx context.Context, cibXML []byte, base *wire.Version) (wire.Version, error) {
	r, err := c.call(ctx, serviceCRM, wire.ReqReplaceConfig, wire.ReplaceConfig{CIB: string(cibXML), Base: base})
	if err != nil {
		return wire.Version{}, err
	}
	var a wire.Applied
	if err := wire.Decode(r, &a); err != nil {
		return wire.Version{}, fmt.Errorf("crm: bad reply: %w", err)
	}
	return a.Version, nil
}

// Status returns the controller's view (DC, quorum, members, version).
func (c *Client) Status(ctx context.Context) (wire.Status, error) {
	var st wire.Status
	r, err := c.call(ctx, serviceCRM, wire.ReqStatus, nil)
	if err != nil {
		return st, err
	}
	if err := wire.Decode(r, &st); err != nil {
		return st, fmt.Errorf("crm: bad reply: %w", err)
	}
	return st, nil
}

// SetAttribute sets (or, with del, deletes) a transient attribute of this
// node (lifetime reboot).
func (c *Client) SetAttribute(ctx context.Context, name, value string, del bool) error {
	_, err := c.call(ctx, serviceCRM, wire.ReqSetAttribute, wire.SetAttribute{Name: name, Value: value, Delete: del})
	return err
}

// Cleanup clears a resource's failures and history on node ("" = every
// node), so that it is probed again. It returns once the connected node
// has applied the cleanup (an older ringd answered when it was sent).
func (c *Client) Cleanup(ctx context.Context, rsc, node string) error {
	_, err := c.call(ctx, serviceCRM, wire.ReqCleanup, wire.Cleanup{Resource: rsc, Node: node})
	return err
}

// FenceHistory returns the cluster's fencing history.
func (c *Client) FenceHistory(ctx context.Context) ([]wire.FenceEntry, error) {
	r, err := c.call(ctx, serviceStonith, wire.ReqFenceHistory, nil)
	if err != nil {
		return nil, err
	}
	var h []wire.FenceEntry
	if err := json.Unmarshal(r, &h); err != nil {
		return nil, fmt.Errorf("crm: bad fencing history: %w", err)
	}
	return h, nil
}

// Fence fences target with action (reboot, off, on) through this node's
// fencer and returns when it succeeded or gave up.
func (c *Client) Fence(ctx context.Context, req wire.Fence) (wire.FenceReply, error) {
	var rep wire.FenceReply
	r, err := c.call(ctx, serviceStonith, wire.ReqFence, req)
	if err != nil {
		return rep, err
	}
	if err := wire.Decode(r, &rep); err != nil {
		return rep, fmt.Errorf("crm: bad reply: %w", err)
	}
	return rep, nil
}
