package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"ringmaster/clients/quorum"
)

// newQuorumCmd is `ringctl quorum` (corosync-quorumtool): the status, with
// exit status 0 when quorate and 2 when not, so scripts can test it;
// `watch` follows changes; `expected`, `votes` and `cancel-wait-for-all`
// change the cluster at run time (through the ring, so every node agrees).
func newQuorumCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quorum",
		Short: "Show and change votequorum state (like corosync-quorumtool -s); exit 2 when not quorate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withQuorum(cmd, g, func(ctx context.Context, c *quorum.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return printQuorumExit(cmd.OutOrStdout(), g, st)
			})
		},
	}
	cmd.AddCommand(newQuorumWatchCmd(g), newQuorumExpectedCmd(g), newQuorumVotesCmd(g), newQuorumCancelWFACmd(g))
	return cmd
}

// withQuorum dials the node's votequorum service for one command.
func withQuorum(cmd *cobra.Command, g *globals, f func(ctx context.Context, c *quorum.Client) error) error {
	return withClient(cmd, g, quorum.New, f)
}

// printQuorumExit prints the status and turns "not quorate" into exit
// status 2 (after printing: the output is still wanted).
func printQuorumExit(w io.Writer, g *globals, st *quorum.Status) error {
	if g.json {
		if err := printJSON(w, st); err != nil {
			return err
		}
	} else {
		printQuorum(w, st)
	}
	if !st.Quorate {
		return exitError{2}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// printQuorum prints corosync-quorumtool -s's layout.
func printQuorum(w io.Writer, st *quorum.Status) {
	fmt.Fprintln(w, "Quorum information")
	fmt.Fprintln(w, "------------------")
	fmt.Fprintf(w, "Quorum provider:  votequorum\n")
	fmt.Fprintf(w, "Nodes:            %d\n", len(st.Members))
	fmt.Fprintf(w, "Node ID:          %d\n", st.NodeID)
	fmt.Fprintf(w, "Ring ID:          %s\n", st.Ring)
	fmt.Fprintf(w, "Quorate:          %s\n", yesNo(st.Quorate))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Votequorum information")
	fmt.Fprintln(w, "----------------------")
	fmt.Fprintf(w, "Expected votes:   %d\n", st.ExpectedVotes)
	fmt.Fprintf(w, "Total votes:      %d\n", st.TotalVotes)
	fmt.Fprintf(w, "Quorum:           %d", st.Quorum)
	if !st.Quorate {
		fmt.Fprint(w, " Activity blocked")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Flags:            %s\n", strings.Join(st.Flags, " "))
	if st.WaitForAllStatus {
		fmt.Fprintf(w, "Wait for all:     waiting (cancel with `ringctl quorum cancel-wait-for-all`)\n")
	}
	if st.Syncing {
		fmt.Fprintf(w, "Note:             a membership change is still being synchronised\n")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Membership information")
	fmt.Fprintln(w, "----------------------")
	fmt.Fprintf(w, "%10s %10s %s\n", "Nodeid", "Votes", "Name")
	for _, m := range st.Members {
		name := m.Name
		if m.Local {
			name += " (local)"
		}
		if m.Leaving {
			name += " (leaving)"
		}
		if m.NotCounted {
			name += " (not counted: was away when expected votes were lowered)"
		}
		fmt.Fprintf(w, "%10d %10d %s\n", m.NodeID, m.Votes, name)
	}
}

// quorumLine is one line of `quorum watch`.
func quorumLine(st *quorum.Status) string {
	q := "not quorate"
	if st.Quorate {
		q = "quorate"
	}
	var ms []string
	for _, m := range st.Members {
		ms = append(ms, strconv.Itoa(int(m.NodeID)))
	}
	return fmt.Sprintf("ring %s: %s expected=%d total=%d quorum=%d members=%s flags=%s",
		st.Ring, q, st.ExpectedVotes, st.TotalVotes, st.Quorum, strings.Join(ms, ","), strings.Join(st.Flags, ","))
}

func newQuorumWatchCmd(g *globals) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print the quorum status, then every change, until interrupted (--json: one object per line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dctx, cancel := context.WithTimeout(ctx, requestTimeout)
			conn, err := g.dial(dctx)
			if err != nil {
				cancel()
				return err
			}
			defer conn.Close()
			c := quorum.New(conn)
			w, err := c.Watch(dctx)
			cancel()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for n := 0; count == 0 || n < count; n++ {
				select {
				case <-ctx.Done():
					return nil
				case st, ok := <-w.C():
					if !ok {
						return fmt.Errorf("quorum watch: connection to ringd lost: %v", conn.Err())
					}
					if g.json {
						b, _ := json.Marshal(st)
						fmt.Fprintln(out, string(b))
					} else {
						fmt.Fprintln(out, quorumLine(&st))
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many statuses (0: until interrupted)")
	return cmd
}

// printChanged prints the status after a change (exit 0: the change was
// applied, whatever the quorum).
func printChanged(w io.Writer, g *globals, st *quorum.Status) error {
	if g.json {
		return printJSON(w, st)
	}
	fmt.Fprintln(w, quorumLine(st))
	return nil
}

func parseUint32(s, what string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: want a non-negative number, got %q", what, s)
	}
	return uint32(n), nil
}

func newQuorumExpectedCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "expected N",
		Short: "Set the cluster's expected votes (like corosync-quorumtool -e); refused if it would make the cluster inquorate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseUint32(args[0], "expected votes")
			if err != nil {
				return err
			}
			return withQuorum(cmd, g, func(ctx context.Context, c *quorum.Client) error {
				st, err := c.SetExpected(ctx, n)
				if err != nil {
					return fmt.Errorf("quorum expected: %w", err)
				}
				if st.ExpectedVotes != n {
					// As in corosync, expected votes never go below the
					// votes of the members present: say so rather than
					// leave the operator thinking 1 was set.
					fmt.Fprintf(cmd.ErrOrStderr(), "note: asked for %d, but expected votes is %d: it never goes below the votes of the members present (%d)\n",
						n, st.ExpectedVotes, st.TotalVotes)
				}
				return printChanged(cmd.OutOrStdout(), g, st)
			})
		},
	}
}

func newQuorumVotesCmd(g *globals) *cobra.Command {
	var node uint32
	cmd := &cobra.Command{
		Use:   "votes [--node ID] N",
		Short: "Set a node's votes (default: this node), like corosync-quorumtool -v",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseUint32(args[0], "votes")
			if err != nil {
				return err
			}
			return withQuorum(cmd, g, func(ctx context.Context, c *quorum.Client) error {
				st, err := c.SetVotes(ctx, node, n)
				if err != nil {
					return fmt.Errorf("quorum votes: %w", err)
				}
				return printChanged(cmd.OutOrStdout(), g, st)
			})
		},
	}
	cmd.Flags().Uint32Var(&node, "node", 0, "node id (default: this node)")
	return cmd
}

func newQuorumCancelWFACmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel-wait-for-all",
		Short: "Stop waiting for all nodes (wait_for_all) on every member",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withQuorum(cmd, g, func(ctx context.Context, c *quorum.Client) error {
				st, err := c.CancelWaitForAll(ctx)
				if err != nil {
					return fmt.Errorf("quorum cancel-wait-for-all: %w", err)
				}
				return printChanged(cmd.OutOrStdout(), g, st)
			})
		},
	}
}
