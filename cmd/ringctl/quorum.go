package main

import "github.com/spf13/cobra"

// newQuorumCmd: `ringctl quorum` (stub until its service lands).
func newQuorumCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "quorum", Short: "Show and change votequorum state (like corosync-quorumtool)"}
}
