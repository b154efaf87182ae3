package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/clients/crm"
	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/crm/pengine"
	"ringmaster/crm/wire"
	"ringmaster/totem"
)

// errNotSettled: `crm wait` gave up with work still planned.
var errNotSettled = errors.New("the cluster has not settled")

// waitPoll is how often crm wait and --wait read the CIB again.
const waitPoll = 100 * time.Millisecond

// crmPending lists what keeps the cluster from being settled, as the
// scheduler plans it from this node's CIB (crm_resource --wait's test):
// every action of the transition except pseudo actions and recurring
// monitors, which the scheduler lists again on every run, and every
// operation recorded as still in progress. Every node
// holds the same CIB in the same order, so an empty plan here is the DC's
// empty plan at the same point, and a change this node submitted is in
// its CIB once the command that made it has returned.
func crmPending(st wire.Status, c *cib.CIB, now time.Time) ([]string, error) {
	if !st.Synced {
		return []string{"the partition is still syncing after a membership change"}, nil
	}
	dc := st.DCID
	if dc == 0 && len(st.Members) > 0 {
		// A partition without quorum: its lowest member is still the
		// controller's DC and applies no-quorum-policy (#is_dc).
		dc = slices.Min(st.Members)
	} else if dc == 0 {
		dc = st.Node
	}
	res, err := pengine.Schedule(controld.SchedulerInputFor(c, st.Quorate, totem.NodeID(dc), now), now, pengine.Options{})
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, a := range res.Graph.Actions {
		if !a.Unsettled() {
			continue
		}
		where := a.Node
		if where == "" {
			where = "the cluster"
		}
		pending = append(pending, fmt.Sprintf("%s on %s", a.Key, where))
	}
	// An operation a node is still running: the controller records a
	// start or promote as pending (rc-code 193) when it delivers the
	// action, and the scheduler may plan nothing more for it (a pending
	// promote counts as promoted). crm_resource --wait looks for these
	// too. A node that is not online will not report one.
	for _, ns := range c.Status.Nodes {
		if ns.Attrs.Value("crmd") != "online" {
			continue
		}
		for _, r := range ns.Resources {
			for _, op := range r.Ops {
				if op.RC() == ocfUnknown {
					pending = append(pending, fmt.Sprintf("%s on %s (in progress)", op.Attrs.Value("operation_key"), ns.Uname()))
				}
			}
		}
	}
	return pending, nil
}

// ocfUnknown is the rc-code of an operation in progress (PCMK_OCF_UNKNOWN).
const ocfUnknown = 193

// waitSettled asks ringd for the CIB every poll until nothing is pending
// or timeout passes (0: ask once).
func waitSettled(ctx context.Context, socket string, timeout, poll time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		err := func() error {
			cctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			cl, err := crm.Dial(cctx, socket)
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.Status(cctx)
			if err != nil {
				return err
			}
			c, err := cl.CIB(cctx)
			if err != nil {
				return err
			}
			pending, err = crmPending(st, c, time.Now())
			return err
		}()
		switch {
		case err != nil && !isTryAgain(err):
			return nil, err
		case err != nil:
			pending = []string{err.Error()}
		case len(pending) == 0:
			return nil, nil
		}
		if !time.Now().Add(poll).Before(deadline) {
			return pending, fmt.Errorf("%w within %v", errNotSettled, timeout)
		}
		select {
		case <-ctx.Done():
			return pending, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func newCrmWaitCmd(g *globals) *cobra.Command {
	var timeout, poll time.Duration
	c := &cobra.Command{
		Use:   "wait [--timeout D]",
		Short: "Wait until the cluster has settled: nothing left to start, stop, move or fence (crm_resource --wait)",
		Long: `Wait until the resource manager has nothing left to do: the scheduler,
run on this node's copy of the CIB, plans no action other than recurring
monitors. Run it after a change (crm resource move, node standby, apply)
to wait for its effect. Exits 0 once settled; after --timeout it exits 124
(as crm_resource --wait) and lists the actions still pending.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pending, err := waitSettled(cmd.Context(), g.socket, timeout, poll)
			if errors.Is(err, errNotSettled) {
				writePending(cmd.ErrOrStderr(), pending)
			}
			return err
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait")
	c.Flags().DurationVar(&poll, "interval", waitPoll, "how often to look")
	return c
}

func writePending(w io.Writer, pending []string) {
	fmt.Fprintf(w, "Pending actions:\n  %s\n", strings.Join(pending, "\n  "))
}
