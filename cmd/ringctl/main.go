// Command ringctl is the operator tool of ringmaster: one CLI for what
// corosync-cfgtool, corosync-quorumtool, corosync-cmapctl, corosync-cpgtool,
// crm_simulate, ipvsadm and the resource-agent helpers do separately.
//
// Each command group lives in its own file and is added to the root in
// newRootCmd; global flags (--socket, --json) are read through the globals
// struct so commands never touch package-level state.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// defaultSocket is where ringd listens unless [ipc] socket says otherwise.
const defaultSocket = "/run/ringmaster/ringd.sock"

// globals holds the persistent flags shared by every subcommand.
type globals struct {
	socket string
	json   bool
}

// exitError carries a specific process exit status out of a command
// (e.g. `ringctl quorum` exits 2 when not quorate, `agent exec` exits with the
// agent's OCF code) without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "ringctl",
		Short:         "Operate a ringmaster cluster node",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", envOr("RINGMASTER_SOCKET", defaultSocket), "ringd IPC socket (env RINGMASTER_SOCKET)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	for _, add := range []func(*globals) *cobra.Command{
		newStatusCmd,
		newKeygenCmd,
		newConfigCmd,
		newAgentCmd,
		newLVSCmd,
		newCrmCmd,
		newQuorumCmd,
		newCmapCmd,
		newCPGCmd,
	} {
		root.AddCommand(add(g))
	}
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "ringctl:", err)
	os.Exit(1)
}
