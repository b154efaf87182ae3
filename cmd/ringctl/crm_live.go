package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/clients/crm"
	"ringmaster/crm/cib"
	"ringmaster/crm/wire"
	"ringmaster/stonithd"
)

// The commands that need the running resource manager: crm status (like
// crm_mon), stonith history and stonith fence (like stonith_admin).

// withCRM dials ringd's resource manager for one command.
func withCRM(g *globals, f func(ctx context.Context, c *crm.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c, err := crm.Dial(ctx, g.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

// fenceEntries converts the wire history to stonithd's entries (the same
// JSON).
func fenceEntries(in []wire.FenceEntry) []stonithd.Entry {
	out := make([]stonithd.Entry, 0, len(in))
	for _, e := range in {
		out = append(out, stonithd.Entry(e))
	}
	return out
}

// crmSnapshot reads what `crm status` shows, from one connection.
func crmSnapshot(g *globals) (st wire.Status, c *cib.CIB, hist []stonithd.Entry, err error) {
	err = withCRM(g, func(ctx context.Context, cl *crm.Client) error {
		if st, err = cl.Status(ctx); err != nil {
			return err
		}
		if c, err = cl.CIB(ctx); err != nil {
			return err
		}
		h, err := cl.FenceHistory(ctx)
		if err != nil {
			return err
		}
		hist = fenceEntries(h)
		return nil
	})
	return st, c, hist, err
}

func newCrmStatusCmd(g *globals) *cobra.Command {
	var watch bool
	var interval time.Duration
	c := &cobra.Command{
		Use:   "status [--json] [--watch]",
		Short: "Show nodes, resources, failed actions and fencing history (like crm_mon)",
		Long: `Show the cluster as this node's resource manager sees it: the DC and quorum,
every node's state, every resource with its state and node, failed actions
and the fencing history. --watch redraws it every --interval until
interrupted (with --json, one JSON document per line).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			show := func(w io.Writer) error {
				st, c, hist, err := crmSnapshot(g)
				if err != nil {
					return err
				}
				return writeCRMStatus(w, st, c, hist, time.Now(), g.json)
			}
			if !watch {
				return show(cmd.OutOrStdout())
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt)
			defer signal.Stop(sig)
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				if !g.json {
					fmt.Fprint(cmd.OutOrStdout(), "\033[H\033[2J")
				}
				if err := show(cmd.OutOrStdout()); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "ringctl:", err)
				}
				select {
				case <-sig:
					return nil
				case <-t.C:
				}
			}
		},
	}
	c.Flags().BoolVarP(&watch, "watch", "w", false, "redraw until interrupted")
	c.Flags().DurationVar(&interval, "interval", time.Second, "redraw interval for --watch")
	return c
}

func newStonithHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history [--json]",
		Short: "The cluster's fencing history (every node holds the same)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCRM(g, func(ctx context.Context, c *crm.Client) error {
				h, err := c.FenceHistory(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(h)
				}
				return stonithd.WriteHistory(cmd.OutOrStdout(), fenceEntries(h))
			})
		},
	}
}

func newStonithFenceCmd(g *globals) *cobra.Command {
	var action string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "fence NODE [--action reboot|off|on]",
		Short: "Fence a node now with the configured devices and topology (like stonith_admin --reboot)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout+requestTimeout)
			defer cancel()
			c, err := crm.Dial(ctx, g.socket)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Fence(ctx, wire.Fence{Target: a[0], Action: action, Timeout: timeout})
			if err != nil {
				return err
			}
			if g.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			if !rep.OK {
				return fmt.Errorf("fencing %s (%s) failed: %s", a[0], action, rep.Reason)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s of %s succeeded (device %s)\n", action, a[0], rep.Device)
			return nil
		},
	}
	c.Flags().StringVar(&action, "action", "reboot", "reboot, off or on")
	c.Flags().DurationVar(&timeout, "timeout", 120*time.Second, "give up after this long")
	return c
}
