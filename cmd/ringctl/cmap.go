package main

import "github.com/spf13/cobra"

// newCmapCmd: `ringctl cmap` (stub until its service lands).
func newCmapCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "cmap", Short: "Read, write and track confdb keys (like corosync-cmapctl)"}
}
