package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/ipc"
	"ringmaster/reconfig/wire"
	execwire "ringmaster/totem/exec/wire"
)

// newConfigReloadCmd is `ringctl config reload`, corosync-cfgtool -R: the
// local ringd runs a cluster-wide reload (internal/daemon/cluster_reload.go)
// and ringctl prints the outcome. It asks again while the moment is wrong
// (another reload, a membership change, the ring's sync), until --wait.
func newConfigReloadCmd(g *globals) *cobra.Command {
	var timeout, wait time.Duration
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Reload every node's configuration file, applied everywhere or nowhere (like corosync-cfgtool -R)",
		Long: `Every member of the ring loads and validates its own configuration file; the
cluster-wide parts ([totem] timings, the node list, [quorum], the key) must be
the same on every node. Then every node applies its file at the same point of
the ring's ordered stream, or, if any node refuses, none does and the node
and FILE:LINE that refused are printed (exit status 1).

Applied live: totem timings, nodes added to or removed from the node list (a
node is removed only once it is stopped), quorum options, totem.keyfile and
previous_keyfiles (key rotation), ipc allowed uids/gids, logging. Settings
that need a restart are listed as pending restart. SIGHUP still reloads one
node only (keys, ipc, logging).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+timeout+5*time.Second)
			defer cancel()
			conn, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			req := wire.EncodePayload(wire.ReloadRequest{TimeoutMS: timeout.Milliseconds()})
			giveUp := time.Now().Add(wait)
			var res wire.Result
			for {
				p, err := conn.Call(ctx, uint16(execwire.ServiceReconfig), wire.MsgReload, req)
				if err != nil {
					if errors.Is(err, ipc.ErrTryAgain) && time.Now().Before(giveUp) {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					if errors.Is(err, ipc.ErrUnknown) {
						// A ringd older than ringctl: no reload service.
						return fmt.Errorf("config reload: this ringd has no cluster-wide reload (older than ringctl?): upgrade every node, or reload each node's file with SIGHUP (keys, ipc, logging only): %w", err)
					}
					return fmt.Errorf("config reload: %w", err)
				}
				res = wire.Result{}
				if err := wire.DecodePayload(p, &res); err != nil {
					return fmt.Errorf("config reload: bad reply: %w", err)
				}
				if res.Committed || !res.TryAgain || !time.Now().Before(giveUp) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printReload(cmd.OutOrStdout(), cmd.ErrOrStderr(), &res)
			}
			if !res.Committed {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long the members may take to validate and vote")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to keep asking while another reload or a membership change is in the way")
	return cmd
}

func printReload(out, errw io.Writer, r *wire.Result) {
	if !r.Committed {
		fmt.Fprintf(errw, "configuration reload %s refused; every node keeps its running configuration\n", r.ID)
		if len(r.RefusedBy) == 0 {
			fmt.Fprintf(errw, "  %s\n", r.Error)
		}
		for _, f := range r.RefusedBy {
			for _, line := range strings.Split(f.Error, "\n") {
				fmt.Fprintf(errw, "  node %d: %s\n", f.NodeID, line)
			}
		}
		return
	}
	fmt.Fprintf(out, "configuration reload %s applied on %d nodes\n", r.ID, len(r.Nodes))
	for _, n := range r.Nodes {
		applied, pending := "nothing", ""
		if len(n.Applied) > 0 {
			applied = strings.Join(n.Applied, " ")
		}
		if len(n.PendingRestart) > 0 {
			pending = "; pending restart: " + strings.Join(n.PendingRestart, " ")
		}
		fmt.Fprintf(out, "  node %d: applied %s%s\n", n.NodeID, applied, pending)
	}
}
