package sim

import (
	"errors"

	"ringmaster/totem"
)

// ErrDown is returned by SendPayload for a node that is not running.
var ErrDown = errors.New("sim: node is down")

// SendPayload makes node id send an arbitrary payload, for services that
// run on the simulated ring (crm/controld/sim runs the resource manager's
// controllers over it, reading deliveries and configuration changes with
// OnEvent). The Checker only understands the messages Send makes: use
// Config.NoCheck with it. Returns the processor's error (totem.ErrTryAgain
// when its queue is full).
func (c *Cluster) SendPayload(id totem.NodeID, payload []byte, g totem.Guarantee) error {
	n := c.Node(id)
	if n == nil || !n.Up {
		return ErrDown
	}
	if err := n.P.Send(payload, g); err != nil {
		c.Stats.TryAgain++
		return err
	}
	c.Stats.Sent++
	c.collect(n)
	return nil
}
