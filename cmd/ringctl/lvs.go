package main

import "github.com/spf13/cobra"

// newLVSCmd: `ringctl lvs list` (lrmd issue).
func newLVSCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "lvs", Short: "Show LVS virtual services"}
}
