package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"ringmaster/clients"
	"ringmaster/clients/cpg"
	"ringmaster/totem"
)

// newCPGCmd: `ringctl cpg`, the closed process groups (corosync-cpgtool).
func newCPGCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cpg", Short: "Show closed process groups (like corosync-cpgtool)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "groups",
		Short: "List every group of the cluster with its members (nodeid, pid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := cpg.Dial(dctx, g.socket)
			dcancel()
			if err != nil {
				return err
			}
			defer c.Close()
			gs, err := c.Groups(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), groupsJSON(gs))
			}
			// Node names and addresses are a nicety: a daemon that
			// cannot say still gets its groups listed.
			st, _ := c.Conn().Status(ctx)
			printGroups(cmd.OutOrStdout(), gs, st)
			return nil
		},
	})
	return cmd
}

// cpgGroupsOut is `ringctl cpg groups --json`.
type cpgGroupsOut struct {
	Groups []cpgGroupOut `json:"groups"`
}

type cpgGroupOut struct {
	Name    string         `json:"name"`
	Members []cpgMemberOut `json:"members"`
}

type cpgMemberOut struct {
	NodeID totem.NodeID `json:"nodeid"`
	PID    uint32       `json:"pid"`
}

func groupsJSON(gs []cpg.Group) cpgGroupsOut {
	out := cpgGroupsOut{Groups: []cpgGroupOut{}}
	for _, g := range gs {
		og := cpgGroupOut{Name: g.Name, Members: []cpgMemberOut{}}
		for _, m := range g.Members {
			og.Members = append(og.Members, cpgMemberOut{NodeID: m.NodeID, PID: m.PID})
		}
		out.Groups = append(out.Groups, og)
	}
	return out
}

// printGroups prints the listing the way corosync-cpgtool does: the group
// name on its own line, then one line per member.
func printGroups(w io.Writer, gs []cpg.Group, st *clients.Status) {
	names := map[uint32]string{}
	if st != nil {
		for _, m := range st.Members {
			names[m.NodeID] = fmt.Sprintf(" (%s %s)", m.Name, m.Addr)
		}
	}
	fmt.Fprintf(w, "%-24s %10s %10s\n", "Group Name", "PID", "Node ID")
	for _, g := range gs {
		fmt.Fprintln(w, printableName(g.Name))
		for _, m := range g.Members {
			fmt.Fprintf(w, "%-24s %10d %10d%s\n", "", m.PID, m.NodeID, names[uint32(m.NodeID)])
		}
	}
}

// printableName shows a group name as is when it is printable text, else
// quoted with escapes (names are arbitrary bytes).
func printableName(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
