package main

import "github.com/spf13/cobra"

// newCPGCmd: `ringctl cpg` (stub until its service lands).
func newCPGCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "cpg", Short: "Show closed process groups (like corosync-cpgtool)"}
}
