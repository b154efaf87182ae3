package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"ringmaster/clients/crm"
	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
	"ringmaster/crm/pengine"
	"ringmaster/crm/wire"
	"ringmaster/ipc"
)

// ipcStore is the cluster's CIB as ringd's resource manager holds it.
// Configuration edits are submitted with the version they were based on
// (optimistic concurrency: a concurrent change makes every node refuse
// ours, and the edit is redone on the new CIB). Status edits go through the
// controller's own requests (transient attributes of this node, cleanup).
type ipcStore struct {
	socket string
}

// errStatusEdit: an edit of the status section through the configuration
// path (the controller owns the status).
var errStatusEdit = errors.New("this change is to the CIB status, which ringd's controller keeps; use crm resource cleanup or a transient attribute of the local node")

func (s ipcStore) with(f func(ctx context.Context, c *crm.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c, err := crm.Dial(ctx, s.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

func (s ipcStore) Load() (*cib.CIB, error) {
	var out *cib.CIB
	err := s.with(func(ctx context.Context, c *crm.Client) (err error) {
		out, err = c.CIB(ctx)
		return err
	})
	return out, err
}

// maxConflictRetries bounds how often an edit is redone after concurrent
// changes (each retry re-reads the CIB).
const maxConflictRetries = 20

func (s ipcStore) Update(edit func(*cib.CIB) (*cib.CIB, error)) error {
	return s.with(func(ctx context.Context, c *crm.Client) error {
		// Conflicts (someone else's change came first) and TRY_AGAIN (a
		// membership change is being synced) have their own budgets.
		busyUntil := time.Now().Add(10 * time.Second)
		for conflicts := 0; conflicts < maxConflictRetries; {
			cur, err := c.CIB(ctx)
			if err != nil {
				return err
			}
			next, err := edit(cur)
			if err != nil {
				return err
			}
			if next == cur {
				return nil
			}
			a, b := configXML(cur), configXML(next)
			if a == b {
				return errStatusEdit
			}
			var x bytes.Buffer
			if _, err := next.WriteTo(&x); err != nil {
				return err
			}
			base := cibVersion(cur)
			_, err = c.ReplaceConfig(ctx, x.Bytes(), &base)
			if errors.Is(err, crm.ErrConflict) {
				conflicts++
				continue
			}
			if err != nil && isTryAgain(err) && time.Now().Before(busyUntil) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		return fmt.Errorf("the configuration kept changing under this edit (%d attempts)", maxConflictRetries)
	})
}

// isTryAgain: ringd asks to retry (the ring is syncing after a
// membership change).
func isTryAgain(err error) bool { return errors.Is(err, ipc.ErrTryAgain) }

// configXML is the configuration section as XML (the part an edit may
// change through ReplaceConfig).
func configXML(c *cib.CIB) string {
	var b bytes.Buffer
	if e := c.ConfigElement(); e != nil {
		if err := e.Write(&b, 0); err != nil {
			return ""
		}
	}
	return b.String()
}

func cibVersion(c *cib.CIB) wire.Version {
	g := func(n string) int64 {
		v, _ := strconv.ParseInt(c.Attrs.Value(n), 10, 64)
		return v
	}
	return wire.Version{AdminEpoch: g("admin_epoch"), Epoch: g("epoch"), NumUpdates: g("num_updates")}
}

// SetTransient sets a transient (lifetime reboot) attribute of the local
// node through the controller.
func (s ipcStore) SetTransient(a cibedit.Attr, value string, del bool) error {
	return s.with(func(ctx context.Context, c *crm.Client) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if a.Node != "" && !strings.EqualFold(a.Node, st.Name) {
			return fmt.Errorf("transient attributes are set by the node itself: run this on %s (this is %s), or use -l forever", a.Node, st.Name)
		}
		return c.SetAttribute(ctx, a.Name, value, del)
	})
}

// Cleanup forgets a resource's failures on node ("" = every node).
func (s ipcStore) Cleanup(rsc, node string) error {
	return s.with(func(ctx context.Context, c *crm.Client) error { return c.Cleanup(ctx, rsc, node) })
}

// statusStore is implemented by stores whose status section is kept by
// ringd's controller (ipcStore): the commands that change the status use
// it instead of editing the CIB.
type statusStore interface {
	SetTransient(a cibedit.Attr, value string, del bool) error
	Cleanup(rsc, node string) error
}

// notConnected reports whether err means ringd (or its resource manager)
// is not there: crm_attribute's "not connected" exit status.
func notConnected(err error) bool {
	var oe *net.OpError
	return errors.Is(err, crm.ErrDisabled) || errors.As(err, &oe) && oe.Op == "dial"
}

// restartViaRingd is crm_resource --restart: stop the resource, wait until
// the cluster reports it stopped everywhere, then let it start again.
func restartViaRingd(socket, rsc string, timeout time.Duration) error {
	st := ipcStore{socket: socket}
	if err := st.Update(func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Stop(c, rsc) }); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := st.Load()
		if err != nil {
			return err
		}
		active, err := activeAnywhere(c, rsc)
		if err != nil {
			return err
		}
		if !active {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not stop within %v; its target-role stays Stopped", rsc, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st.Update(func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Start(c, rsc) })
}

// activeAnywhere reports whether rsc (or any member of it) is active on
// some node according to the CIB's status.
func activeAnywhere(c *cib.CIB, rsc string) (bool, error) {
	cs, err := pengine.Status(c, time.Now(), pengine.StatusOptions{ShowPending: true})
	if err != nil {
		return false, err
	}
	for _, p := range cs.Primitives() {
		mine := rsc == p.ID || rsc == p.Group || rsc == p.Clone ||
			p.Anonymous && (rsc == statusInstanceBase(p.ID) || rsc == statusInstanceBase(p.Group))
		if mine && len(p.Nodes) > 0 {
			return true, nil
		}
	}
	return false, nil
}
