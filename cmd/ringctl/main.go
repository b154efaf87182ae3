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
	"path/filepath"

	"github.com/spf13/cobra"

	"ringmaster/internal/version"
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
		newVersionCmd,
		newEventsCmd,
		newStonithCmd, newFenceHostCmd,
		newManCmd,
	} {
		root.AddCommand(add(g))
	}
	strictGroups(root)
	refuseJSON(root, g)
	return root
}

// jsonUnsupported names the commands whose output has a format of its own
// (Pacemaker XML, TOML) and why; with --json they fail rather than print
// something else than asked. A flag after the reason restricts the
// refusal to runs that set it (apply prints nothing without --dry-run).
var jsonUnsupported = map[string][2]string{
	"ringctl crm export": {"it prints Pacemaker XML, or resources.toml with --toml", ""},
	"ringctl crm apply":  {"--dry-run prints the resulting CIB as Pacemaker XML", "dry-run"},
	"ringctl crm import": {"--dry-run prints the resulting CIB as Pacemaker XML", "dry-run"},
}

// refuseJSON makes the commands of jsonUnsupported fail with --json.
func refuseJSON(root *cobra.Command, g *globals) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		why, ok := jsonUnsupported[c.CommandPath()]
		if !ok {
			return
		}
		pre := c.PreRunE
		c.PreRunE = func(cmd *cobra.Command, args []string) error {
			if g.json && (why[1] == "" || cmd.Flags().Changed(why[1])) {
				return fmt.Errorf("%s: --json is not supported: %s", cmd.CommandPath(), why[0])
			}
			if pre != nil {
				return pre(cmd, args)
			}
			return nil
		}
	}
	walk(root)
}

// strictGroups makes every command that only groups subcommands (ringctl,
// ringctl crm, ringctl cpg, ...) fail on an unknown or missing subcommand:
// cobra would print the help and exit 0, so a typo in a script would pass
// silently.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q\nRun '%s --help' for usage", args[0], cmd.CommandPath(), cmd.CommandPath())
		}
		return fmt.Errorf("%q needs a subcommand\nRun '%s --help' for usage", cmd.CommandPath(), cmd.CommandPath())
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ringctl's version (set at build time)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"version": version.String()})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "ringctl", version.String())
			return err
		},
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	// Installed (linked) as crm_attribute, crm_master or attrd_updater,
	// ringctl answers the resource agents that call them (attrtool.go).
	if tool := filepath.Base(os.Args[0]); attrToolNames[tool] {
		os.Exit(runAttrTool(tool, os.Args[1:], attrEnv{getenv: os.Getenv, cib: os.Getenv(cibFileEnv), socket: envOr("RINGMASTER_SOCKET", defaultSocket)}, os.Stdout, os.Stderr))
	}
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "ringctl:", err)
	os.Exit(exitStatus(err))
}

// exitStatus is ringctl's exit status for a command's error (exitError
// aside): exitTimeout when the cluster did not settle in time, else 1.
func exitStatus(err error) int {
	if errors.Is(err, errNotSettled) {
		return exitTimeout
	}
	return 1
}

// exitTimeout is crm_resource --wait's exit status when the cluster has
// not settled in time (CRM_EX_TIMEOUT, as timeout(1)).
const exitTimeout = 124
