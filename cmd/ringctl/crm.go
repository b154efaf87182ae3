package main

import "github.com/spf13/cobra"

// newCrmCmd: `ringctl crm simulate` (policy engine issue).
func newCrmCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "crm", Short: "Resource manager tools"}
}
