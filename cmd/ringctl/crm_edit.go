package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
	"ringmaster/crm/cibtoml"
)

// cibFileEnv names a CIB file that the editing commands (and ringctl run
// as crm_attribute, crm_master or attrd_updater) read and rewrite instead
// of asking ringd: a test hook and an offline editor.
const cibFileEnv = "RINGMASTER_CIB_FILE"

// addCrmEditCmds adds the configuration commands to `ringctl crm`.
func addCrmEditCmds(crm *cobra.Command, g *globals) {
	var cibFile string
	file := func() string { return cibFile }
	for _, c := range []*cobra.Command{newCrmExportCmd(g, file), newCrmApplyCmd(g, file), newCrmImportCmd(g, file),
		newCrmResourceCmd(g, file), newCrmNodeCmd(g, file), newCrmAttributeCmd(g, file)} {
		// Every editing command (not simulate, which takes -x) shares the
		// one --cib value.
		c.PersistentFlags().StringVar(&cibFile, "cib", os.Getenv(cibFileEnv), "edit this CIB file instead of the cluster's (env "+cibFileEnv+")")
		crm.AddCommand(c)
		switch c.Name() {
		case "apply", "import", "resource", "node":
			addWaitFlag(c, g, file)
		}
	}
}

// addWaitFlag gives a command that changes the configuration --wait
// (crm_resource --wait): after the change, wait as `crm wait` does until
// the cluster has carried it out.
func addWaitFlag(c *cobra.Command, g *globals, file func() string) {
	var w waitFlag
	c.PersistentFlags().Var(&w, "wait", "after the change, wait up to this long (--wait alone: 1m) until the cluster has settled, as crm wait")
	c.PersistentFlags().Lookup("wait").NoOptDefVal = waitBare
	c.PersistentPreRunE = func(_ *cobra.Command, args []string) error {
		// "--wait 5m" is --wait alone followed by the argument 5m
		// (clear RSC [NODE] would take it for the node).
		if w.bare && len(args) > 0 {
			if _, err := time.ParseDuration(args[len(args)-1]); err == nil {
				return fmt.Errorf("--wait takes its value with '=' (--wait=%s); %q was read as an argument", args[len(args)-1], args[len(args)-1])
			}
		}
		if w.d > 0 && file() != "" {
			return errors.New("--wait needs the running cluster: a CIB file (--cib) has nobody to carry the change out")
		}
		return nil
	}
	c.PersistentPostRunE = func(cmd *cobra.Command, _ []string) error {
		wait := w.d
		if wait <= 0 || file() != "" {
			return nil
		}
		if f := cmd.Flags().Lookup("dry-run"); f != nil && f.Value.String() == "true" {
			return nil
		}
		pending, err := waitSettled(cmd.Context(), g.socket, wait, waitPoll)
		if errors.Is(err, errNotSettled) {
			writePending(cmd.ErrOrStderr(), pending)
		}
		return err
	}
}

// waitBare is --wait given without a value: wait up to a minute.
const waitBare = "1m"

// waitFlag is --wait[=D]; bare tells --wait alone.
type waitFlag struct {
	d    time.Duration
	bare bool
}

func (w *waitFlag) String() string {
	if w.d == 0 {
		return "0" // pflag shows no default for it
	}
	return w.d.String()
}

func (w *waitFlag) Type() string { return "duration" }

func (w *waitFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	// pflag sets NoOptDefVal's text for --wait alone; "--wait=1m" spelled
	// out is the same wait (and is not followed by a stray argument).
	w.d, w.bare = d, s == waitBare
	return nil
}

func readCIBFile(path string) (*cib.CIB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := cib.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeCIBFile replaces path atomically (a temporary file renamed over it).
func writeCIBFile(path string, c *cib.CIB) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cib-*.xml")
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// cibStore is where the configuration commands read and change the CIB.
// Today the one implementation is a file (--cib FILE, RINGMASTER_CIB_FILE).
// The ringd wiring adds one that talks to the resource manager over IPC in
// openCIBStore: Load fetches the cluster's CIB; Update runs the edit (a pure
// cibedit function) against the current CIB and submits the result with
// the version it was based on, retrying on a conflict, or ships the edit
// to the DC. Update must change nothing when edit returns an error, and
// nothing when edit returns its input unchanged (the same pointer).
type cibStore interface {
	Load() (*cib.CIB, error)
	Update(edit func(*cib.CIB) (*cib.CIB, error)) error
}

// openCIBStore picks the store: the CIB file when one is named, else ringd
// at socket.
func openCIBStore(socket, file string) (cibStore, error) {
	if file != "" {
		return fileStore(file), nil
	}
	return ipcStore{socket: socket}, nil
}

// fileStore is a CIB kept in a file, replaced atomically on each update.
// Concurrent updates by two processes are not serialised (last one wins):
// it is a test hook and an offline editor, not the cluster's store.
type fileStore string

func (f fileStore) Load() (*cib.CIB, error) { return readCIBFile(string(f)) }

func (f fileStore) Update(edit func(*cib.CIB) (*cib.CIB, error)) error {
	cur, err := readCIBFile(string(f))
	if err != nil {
		return err
	}
	next, err := edit(cur)
	if err != nil {
		return err
	}
	if next == cur {
		return nil
	}
	return writeCIBFile(string(f), next)
}

// editCIB applies edit through the store for socket and file.
func editCIB(socket, file string, edit func(*cib.CIB) (*cib.CIB, error)) error {
	st, err := openCIBStore(socket, file)
	if err != nil {
		return err
	}
	return st.Update(edit)
}

func newCrmExportCmd(g *globals, file func() string) *cobra.Command {
	var asTOML, pacemaker bool
	c := &cobra.Command{
		Use:   "export [--toml|--pacemaker]",
		Short: "Print the cluster's CIB as Pacemaker XML (valid for crm_verify) or as resources.toml",
		Long: `Print the CIB: Pacemaker XML by default (what crm_verify and cibadmin read),
or with --toml the configuration as a resources.toml for ringctl crm apply.
Reads the cluster's CIB from ringd, or the file given with --cib.
Pacemaker's schema has no class "builtin": --pacemaker writes the built-in
agents as ocf:ringmaster:TYPE so that crm_verify and Pacemaker accept the
CIB (running it under Pacemaker needs OCF agents of those names).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openCIBStore(g.socket, file())
			if err != nil {
				return err
			}
			c, err := st.Load()
			if err != nil {
				return err
			}
			if pacemaker {
				if asTOML {
					return errors.New("--pacemaker is for the XML form, not --toml")
				}
				if c, err = cibedit.PacemakerAgents(c); err != nil {
					return err
				}
			}
			return printCIB(cmd.OutOrStdout(), c, asTOML)
		},
	}
	c.Flags().BoolVar(&asTOML, "toml", false, "print the configuration as TOML (resources.toml)")
	c.Flags().BoolVar(&pacemaker, "pacemaker", false, "write builtin:TYPE agents as ocf:ringmaster:TYPE (Pacemaker's schema)")
	return c
}

func printCIB(w io.Writer, c *cib.CIB, asTOML bool) error {
	if !asTOML {
		_, err := c.WriteTo(w)
		return err
	}
	m, err := cibtoml.FromCIB(c)
	if err != nil {
		return err
	}
	return m.Encode(w)
}

// baseCIB is the CIB a dry run applies to: the --cib file, or an empty CIB
// (a dry run never needs ringd).
func baseCIB(path string) (*cib.CIB, error) {
	if path == "" {
		return cibedit.Empty(), nil
	}
	return readCIBFile(path)
}

func newCrmApplyCmd(g *globals, file func() string) *cobra.Command {
	var (
		tomlFile string
		dryRun   bool
	)
	c := &cobra.Command{
		Use:   "apply -f resources.toml [--dry-run]",
		Short: "Make a resources.toml the cluster's configuration",
		Long: `Check a resources.toml (see examples/resources.toml) and install it as the
configuration, replacing the current one (the status is kept; epoch is
bumped). A file with any mistake is refused with FILE:LINE errors and
nothing changes. --dry-run prints the resulting CIB instead (applied to the
--cib file, or to an empty CIB).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tomlFile == "" {
				return fmt.Errorf("-f/--file is required")
			}
			data, err := os.ReadFile(tomlFile)
			if err != nil {
				return err
			}
			m, err := cibtoml.Parse(tomlFile, data)
			if err != nil {
				return err
			}
			cfg, err := m.Build()
			if err != nil {
				return err
			}
			return replaceAndPrint(cmd, g, file(), dryRun, func(cur *cib.CIB) (*cib.CIB, error) { return cibedit.ReplaceConfig(cur, cfg) })
		},
	}
	c.Flags().StringVarP(&tomlFile, "file", "f", "", "resources.toml to apply")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "validate and print the resulting CIB XML; change nothing")
	return c
}

func replaceAndPrint(cmd *cobra.Command, g *globals, path string, dryRun bool, edit func(*cib.CIB) (*cib.CIB, error)) error {
	if dryRun {
		cur, err := baseCIB(path)
		if err != nil {
			return err
		}
		next, err := edit(cur)
		if err != nil {
			return err
		}
		_, err = next.WriteTo(cmd.OutOrStdout())
		return err
	}
	return editCIB(g.socket, path, edit)
}

func newCrmImportCmd(g *globals, file func() string) *cobra.Command {
	var dryRun bool
	c := &cobra.Command{
		Use:   "import CIB.xml [--dry-run]",
		Short: "Make a Pacemaker CIB's configuration the cluster's",
		Long: `Check a Pacemaker CIB (cibadmin --query output, a crm_simulate input) and
install its configuration, keeping the cluster's status. Its epoch is kept
when newer than the cluster's, else bumped past it. Constructs ringmaster
does not implement are refused with the element and id. --dry-run prints
the resulting CIB instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			next, err := readCIBFile(args[0])
			if err != nil {
				return err
			}
			return replaceAndPrint(cmd, g, file(), dryRun, func(cur *cib.CIB) (*cib.CIB, error) { return cibedit.Replace(cur, next) })
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "validate and print the resulting CIB XML; change nothing")
	return c
}

func newCrmResourceCmd(g *globals, file func() string) *cobra.Command {
	cmd := &cobra.Command{Use: "resource", Short: "Start, stop, move, ban, clear or clean up a resource (crm_resource)"}
	simple := func(use, short string, nodeArg bool, edit func(c *cib.CIB, rsc, node string) (*cib.CIB, error)) *cobra.Command {
		args := cobra.ExactArgs(1)
		if nodeArg {
			args = cobra.RangeArgs(1, 2)
		}
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(_ *cobra.Command, a []string) error {
			node := ""
			if len(a) > 1 {
				node = a[1]
			}
			return editCIB(g.socket, file(), func(c *cib.CIB) (*cib.CIB, error) { return edit(c, a[0], node) })
		}}
	}
	cmd.AddCommand(
		simple("start RSC", "Allow the resource to run (target-role Started)", false, func(c *cib.CIB, r, _ string) (*cib.CIB, error) { return cibedit.Start(c, r) }),
		simple("stop RSC", "Stop the resource (target-role Stopped)", false, func(c *cib.CIB, r, _ string) (*cib.CIB, error) { return cibedit.Stop(c, r) }),
		&cobra.Command{Use: "restart RSC", Short: "Stop the resource, wait until it has stopped, then restore its target-role",
			Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, a []string) error {
				// The wait between the two edits is the controller's; a
				// CIB file has none.
				if file() != "" {
					return errors.New("restart needs a running ringd: it waits for the cluster to stop the resource (with --cib, run stop and start)")
				}
				return restartViaRingd(g.socket, a[0], 2*time.Minute)
			}},
		simple("move RSC [NODE]", "Prefer NODE (cli-prefer-RSC, INFINITY), or without NODE ban the current node, until clear", true, func(c *cib.CIB, r, n string) (*cib.CIB, error) { return cibedit.Move(c, r, n) }),
		simple("ban RSC NODE", "Keep the resource off NODE (cli-ban-RSC-on-NODE, -INFINITY) until clear", true, func(c *cib.CIB, r, n string) (*cib.CIB, error) { return cibedit.Ban(c, r, n) }),
		simple("clear RSC [NODE]", "Remove the constraints of move and ban", true, cibedit.Clear),
		cleanupCmd("cleanup RSC [NODE]", "Forget failures (fail counts, failed history) so the resource is reprobed", g, file, cibedit.Cleanup),
		cleanupCmd("refresh RSC [NODE]", "Forget all history of the resource so it is reprobed everywhere", g, file, cibedit.Refresh),
	)
	return cmd
}

// cleanupCmd edits the status section: in a CIB file directly, through
// ringd's controller otherwise (it owns the status; a cleanup there
// forgets the resource's history, so it is probed again).
func cleanupCmd(use, short string, g *globals, file func() string, edit func(c *cib.CIB, rsc, node string) (*cib.CIB, error)) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.RangeArgs(1, 2), RunE: func(_ *cobra.Command, a []string) error {
		node := ""
		if len(a) > 1 {
			node = a[1]
		}
		st, err := openCIBStore(g.socket, file())
		if err != nil {
			return err
		}
		if ss, ok := st.(statusStore); ok {
			return ss.Cleanup(a[0], node)
		}
		return st.Update(func(c *cib.CIB) (*cib.CIB, error) { return edit(c, a[0], node) })
	}}
}

func newCrmNodeCmd(g *globals, file func() string) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Put a node in standby or back online"}
	for _, on := range []bool{true, false} {
		on := on
		use, short := "online NODE", "Let the node run resources again (standby off)"
		if on {
			use, short = "standby NODE", "Move every resource off the node (standby on)"
		}
		cmd.AddCommand(&cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, a []string) error {
			return editCIB(g.socket, file(), func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Standby(c, a[0], on) })
		}})
	}
	return cmd
}

func newCrmAttributeCmd(g *globals, file func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "attribute [crm_attribute options]",
		Short: "Query and change node attributes and cluster options (crm_attribute's options)",
		Long: `Takes crm_attribute's options: -n NAME with -G (query), -v VALUE (update)
or -D (delete); -N NODE for a node attribute, -l reboot|forever for its
lifetime (transient or permanent), -t crm_config|rsc_defaults|op_defaults
for options, -z for utilization, -p/--promotion[=RSC] for a promotion
score, -q to print only the value.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Flag parsing is crm_attribute's: take ringctl's own
			// global and --cib flags out of the arguments first.
			args, cibFile, err := globalFlags(args, g)
			if err != nil {
				return err
			}
			if cibFile == "" {
				cibFile = file()
			}
			env := attrEnv{getenv: os.Getenv, cib: cibFile, socket: g.socket}
			if code := runAttrTool("crm_attribute", args, env, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
}

// globalFlags removes ringctl's global flags (--socket, --json) and --cib
// from the arguments of a command that parses its own flags, applying the
// global ones to g and returning --cib's value.
func globalFlags(args []string, g *globals) (rest []string, cibFile string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--socket", "--cib":
			if !hasVal {
				if i+1 >= len(args) {
					return nil, "", fmt.Errorf("%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "--socket" {
				g.socket = val
			} else {
				cibFile = val
			}
		case "--json":
			g.json = true
		default:
			rest = append(rest, a)
		}
	}
	return rest, cibFile, nil
}
