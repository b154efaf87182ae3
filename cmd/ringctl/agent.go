package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/lrmd"
	"ringmaster/lrmd/agents"
	"ringmaster/lrmd/agents/lsb"
	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/agents/ocf"
)

// exitTimedOut is `ringctl agent exec`'s status when the action timed out:
// the agent has no exit code of its own then, and 124 is what timeout(1)
// and crm_resource (CRM_EX_TIMEOUT) use.
const exitTimedOut = 124

// agentPaths are the agent locations, flags of the agent command group.
type agentPaths struct {
	ocfRoot string
	initDir string
	runDir  string
}

func (p *agentPaths) registry() (*lrmd.Registry, error) {
	// One-shot use: not persistent, so builtin:lvs does a single check
	// round and no background health checking.
	return agents.NewRegistry(agents.Config{OCFRoot: p.ocfRoot, InitDir: p.initDir, RunDir: p.runDir})
}

func newAgentCmd(g *globals) *cobra.Command {
	p := &agentPaths{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "List, describe and run resource agents locally (no daemon)",
		Long: `List, describe and run resource agents on this node, in the ringctl process
(like crm_resource --force-start/--force-check): ocf:PROVIDER:TYPE scripts
under the OCF root, lsb:NAME init scripts, and the builtin Go agents
(builtin:vip, builtin:lvs, builtin:lvs-realserver, builtin:dummy).`,
	}
	cmd.PersistentFlags().StringVar(&p.ocfRoot, "ocf-root", envOr("OCF_ROOT", ocf.DefaultRoot), "OCF root (env OCF_ROOT)")
	cmd.PersistentFlags().StringVar(&p.initDir, "init-dir", lsb.DefaultDir, "directory of LSB init scripts")
	cmd.PersistentFlags().StringVar(&p.runDir, "run-dir", envOr("RINGMASTER_RUN_DIR", lvs.DefaultRunDir), "runtime state directory (env RINGMASTER_RUN_DIR)")
	cmd.AddCommand(newAgentListCmd(g, p), newAgentMetaCmd(g, p), newAgentExecCmd(g, p))
	return cmd
}

// writeJSON writes v indented.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAgentListCmd(g *globals, p *agentPaths) *cobra.Command {
	return &cobra.Command{
		Use:               "list [CLASS]",
		Short:             "List installed agents (classes: ocf, lsb, builtin)",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeClass,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := p.registry()
			if err != nil {
				return err
			}
			defer reg.Close()
			class := ""
			if len(args) == 1 {
				class = args[0]
			}
			ids, err := reg.List(cmd.Context(), class)
			if err != nil {
				return err
			}
			if g.json {
				type item struct {
					Agent    string `json:"agent"`
					Class    string `json:"class"`
					Provider string `json:"provider,omitempty"`
					Type     string `json:"type"`
				}
				items := make([]item, 0, len(ids))
				for _, id := range ids {
					items = append(items, item{id.String(), id.Class, id.Provider, id.Type})
				}
				return writeJSON(cmd.OutOrStdout(), items)
			}
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
}

func newAgentMetaCmd(g *globals, p *agentPaths) *cobra.Command {
	return &cobra.Command{
		Use:               "meta AGENT",
		Short:             "Print an agent's OCF meta-data (XML, or a summary with --json)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: p.completeAgent,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := lrmd.ParseAgent(args[0])
			if err != nil {
				return err
			}
			reg, err := p.registry()
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if g.json {
				md, err := reg.MetaData(ctx, id)
				if err != nil {
					return err
				}
				type param struct {
					Name     string   `json:"name"`
					Required bool     `json:"required"`
					Type     string   `json:"type"`
					Default  *string  `json:"default,omitempty"`
					Options  []string `json:"options,omitempty"`
					Short    string   `json:"shortdesc,omitempty"`
				}
				out := struct {
					Agent      string        `json:"agent"`
					Short      string        `json:"shortdesc,omitempty"`
					Long       string        `json:"longdesc,omitempty"`
					Parameters []param       `json:"parameters"`
					Actions    []lrmd.Action `json:"actions"`
				}{Agent: id.String(), Short: md.ShortDesc(), Long: md.LongDesc(), Actions: md.Actions, Parameters: []param{}}
				for i := range md.Parameters {
					mp := &md.Parameters[i]
					pp := param{Name: mp.Name, Required: mp.IsRequired(), Type: mp.Content.Type, Default: mp.Content.Default, Short: mp.ShortDesc()}
					for _, o := range mp.Content.Options {
						pp.Options = append(pp.Options, o.Value)
					}
					out.Parameters = append(out.Parameters, pp)
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			// The agent's own XML, unchanged (scripts print it themselves).
			class, err := reg.Class(id.Class)
			if err != nil {
				return err
			}
			res := class.Exec(ctx, lrmd.Request{Agent: id, Resource: id.Type, Action: lrmd.ActionMetaData, Timeout: 30 * time.Second})
			if !res.OK() {
				return fmt.Errorf("%s meta-data: %s", id, res.Summary())
			}
			fmt.Fprint(cmd.OutOrStdout(), res.Stdout)
			return nil
		},
	}
}

// parseAssignments parses repeated NAME=VALUE flags.
func parseAssignments(flag string, items []string) (map[string]string, error) {
	out := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, it)
		}
		out[k] = v
	}
	return out, nil
}

func newAgentExecCmd(g *globals, p *agentPaths) *cobra.Command {
	var params, meta []string
	var timeout, interval time.Duration
	var resource string
	cmd := &cobra.Command{
		Use:   "exec AGENT ACTION",
		Short: "Run one agent action here and exit with its OCF exit code",
		Long: `Run one action (start, stop, monitor, validate-all, meta-data, promote, ...)
of an agent in this process, print the agent's output and exit with the
agent's OCF exit code (0 ok, 1 error, 2 invalid parameter, 3 unimplemented,
4 insufficient privileges, 5 not installed, 6 not configured, 7 not running,
8 promoted, 9 promoted failed), or 124 when the action timed out (the
agent's whole process group is killed). Parameters are validated against the
agent's meta-data first: a missing required parameter gives 6 without running
the agent.

builtin:vip keeps the process alive until its gratuitous ARP announcements
(arp_count x arp_interval) are sent. builtin:lvs does one health-check round
on start; continuous health checking needs the lrmd daemon.`,
		Example: `  ringctl agent exec ocf:heartbeat:Dummy start --param state=/tmp/d.state
  ringctl agent exec builtin:vip start --param ip=192.0.2.10 --param cidr_netmask=24
  ringctl agent exec builtin:lvs start --param vip=192.0.2.10 --param port=80 \
      --param scheduler=rr --param realservers=10.0.0.2:8080,10.0.0.3:8080`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: p.completeAgent,
		RunE: func(cmd *cobra.Command, args []string) error {
			pm, err := parseAssignments("param", params)
			if err != nil {
				return err
			}
			mm, err := parseAssignments("meta", meta)
			if err != nil {
				return err
			}
			reg, err := p.registry()
			if err != nil {
				return err
			}
			m, err := lrmd.NewManager(lrmd.Config{Registry: reg, DefaultTimeout: timeout})
			if err != nil {
				reg.Close()
				return err
			}
			// Ctrl-C cancels the action: the agent's process group is killed.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res := m.Exec(ctx, lrmd.Op{Resource: resource, Agent: args[0], Action: args[1], Params: pm, Meta: mm, Timeout: timeout, Interval: interval})
			if g.json {
				_ = writeJSON(cmd.OutOrStdout(), struct {
					RC        int    `json:"rc"`
					RCText    string `json:"rc_text"`
					Status    string `json:"status"`
					Reason    string `json:"reason,omitempty"`
					Stdout    string `json:"stdout"`
					Stderr    string `json:"stderr"`
					Truncated bool   `json:"truncated,omitempty"`
					Millis    int64  `json:"duration_ms"`
				}{int(res.RC), res.RC.String(), res.Status.String(), res.Reason, res.Stdout, res.Stderr, res.Truncated, res.Duration.Milliseconds()})
			} else {
				fmt.Fprint(cmd.OutOrStdout(), res.Stdout)
				fmt.Fprint(cmd.ErrOrStderr(), res.Stderr)
				if !res.OK() && !(res.Status == lrmd.StatusDone && res.Reason == "" && (res.RC == lrmd.RCNotRunning || res.RC == lrmd.RCRunningPromoted)) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s %s: %s\n", args[0], args[1], res.Summary())
				}
			}
			// Wait for background work of builtin agents (gratuitous ARP)
			// before exiting.
			err = errors.Join(m.Close(), reg.Close())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ringctl:", err)
			}
			code := int(res.RC)
			if res.Status == lrmd.StatusTimedOut {
				code = exitTimedOut
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&params, "param", nil, "instance parameter NAME=VALUE (repeatable; values may contain commas)")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "meta attribute NAME=VALUE, passed as OCF_RESKEY_CRM_meta_NAME (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", lrmd.DefaultTimeout, "action timeout; the agent's process group is killed after it")
	cmd.Flags().DurationVar(&interval, "interval", 0, "monitor interval to tell the agent (OCF_RESKEY_CRM_meta_interval); the action still runs once")
	cmd.Flags().StringVar(&resource, "resource", "", "resource instance name (OCF_RESOURCE_INSTANCE); default: the agent type")
	return cmd
}
