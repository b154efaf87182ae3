package main

import "github.com/spf13/cobra"

// newAgentCmd: `ringctl agent list|meta|exec` (lrmd issue).
func newAgentCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "agent", Short: "List, describe and run resource agents locally"}
}
