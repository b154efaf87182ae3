package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	cdbc "ringmaster/clients/confdb"
	"ringmaster/confdb/wire"
)

// newCmapCmd is `ringctl cmap` (corosync-cmapctl) for the node's confdb:
// without a subcommand it lists every key. Plain output is corosync's
// "KEY (TYPE) = VALUE"; --json gives {"key","type","value"} objects.
func newCmapCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cmap",
		Short: "Read, write and track confdb keys (like corosync-cmapctl)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmapList(cmd, g, "")
		},
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:               "get KEY",
			Short:             "Print one key",
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: completeCmapKey(g),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withCmap(cmd, g, func(ctx context.Context, c *cdbc.Client) error {
					e, err := c.Get(ctx, args[0])
					if err != nil {
						return fmt.Errorf("cmap get %s: %w", args[0], err)
					}
					return printEntry(cmd.OutOrStdout(), g, e)
				})
			},
		},
		&cobra.Command{
			Use:               "set KEY TYPE VALUE",
			Short:             "Write a key (TYPE: u8 u16 u32 u64 i8 i16 i32 i64 flt dbl str bin; bin in hex)",
			Args:              cobra.ExactArgs(3),
			ValidArgsFunction: completeCmapKey(g),
			RunE: func(cmd *cobra.Command, args []string) error {
				t, err := wire.ParseType(args[1])
				if err != nil {
					return fmt.Errorf("cmap set %s: %w", args[0], err)
				}
				v, err := wire.Parse(t, args[2])
				if err != nil {
					return fmt.Errorf("cmap set %s: %w", args[0], err)
				}
				return withCmap(cmd, g, func(ctx context.Context, c *cdbc.Client) error {
					if err := c.Set(ctx, args[0], v); err != nil {
						return fmt.Errorf("cmap set %s: %w", args[0], err)
					}
					return nil
				})
			},
		},
		&cobra.Command{
			Use:               "delete KEY",
			Short:             "Delete a key",
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: completeCmapKey(g),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withCmap(cmd, g, func(ctx context.Context, c *cdbc.Client) error {
					if err := c.Delete(ctx, args[0]); err != nil {
						return fmt.Errorf("cmap delete %s: %w", args[0], err)
					}
					return nil
				})
			},
		},
		&cobra.Command{
			Use:               "list [PREFIX]",
			Short:             "Print the keys under PREFIX (all without one)",
			Args:              cobra.MaximumNArgs(1),
			ValidArgsFunction: completeCmapKey(g),
			RunE: func(cmd *cobra.Command, args []string) error {
				prefix := ""
				if len(args) == 1 {
					prefix = args[0]
				}
				return cmapList(cmd, g, prefix)
			},
		},
		newCmapTrackCmd(g),
	)
	return cmd
}

func withCmap(cmd *cobra.Command, g *globals, f func(ctx context.Context, c *cdbc.Client) error) error {
	return withClient(cmd, g, cdbc.New, f)
}

func cmapList(cmd *cobra.Command, g *globals, prefix string) error {
	return withCmap(cmd, g, func(ctx context.Context, c *cdbc.Client) error {
		es, err := c.List(ctx, prefix)
		if err != nil {
			return fmt.Errorf("cmap list: %w", err)
		}
		w := cmd.OutOrStdout()
		if g.json {
			if es == nil {
				es = []wire.Entry{}
			}
			return printJSON(w, es)
		}
		for _, e := range es {
			fmt.Fprintln(w, e.String())
		}
		return nil
	})
}

func printEntry(w io.Writer, g *globals, e wire.Entry) error {
	if g.json {
		return printJSON(w, e)
	}
	_, err := fmt.Fprintln(w, e.String())
	return err
}

// trackLabels are corosync-cmapctl's prefixes for tracked changes.
var trackLabels = map[wire.EventKind]string{wire.EventAdd: "create", wire.EventModify: "modify", wire.EventDelete: "delete"}

func newCmapTrackCmd(g *globals) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:               "track PREFIX",
		Short:             "Print changes of the keys under PREFIX until interrupted (create>/modify>/delete> KEY (TYPE) = VALUE)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCmapKey(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dctx, cancel := context.WithTimeout(ctx, requestTimeout)
			conn, err := g.dial(dctx)
			if err != nil {
				cancel()
				return err
			}
			defer conn.Close()
			tr, err := cdbc.New(conn).Track(dctx, args[0])
			cancel()
			if err != nil {
				return fmt.Errorf("cmap track %s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			for n := 0; count == 0 || n < count; n++ {
				select {
				case <-ctx.Done():
					return nil
				case ev, ok := <-tr.C():
					if !ok {
						return fmt.Errorf("cmap track: connection to ringd lost: %v", conn.Err())
					}
					v := ev.New
					if ev.Kind == wire.EventDelete {
						v = ev.Old
					}
					if g.json {
						// {"event": ..., "key": ..., "type": ..., "value": ...}
						b, err := json.Marshal(wire.Entry{Key: ev.Key, Value: v})
						if err != nil {
							return err
						}
						fmt.Fprintf(out, "{\"event\":%q,%s\n", ev.Kind.String(), b[1:])
						continue
					}
					fmt.Fprintf(out, "%s> %s\n", trackLabels[ev.Kind], wire.Entry{Key: ev.Key, Value: v})
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many changes (0: until interrupted)")
	return cmd
}
