package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/crm/cib"
	"ringmaster/crm/graph"
	"ringmaster/crm/simulate"
)

// newCrmCmd is `ringctl crm`: resource manager tools. Only the flag wiring
// lives here; the work is in crm/simulate.
func newCrmCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "crm", Short: "Resource manager tools"}
	cmd.AddCommand(newCrmSimulateCmd(g), newCrmStatusCmd(g), newCrmWaitCmd(g))
	addCrmEditCmds(cmd, g) // crm_edit.go: export, apply, import, resource, node, attribute
	return cmd
}

func newCrmSimulateCmd(g *globals) *cobra.Command {
	var (
		xmlFile, saveOutput, saveGraph, datetime, explain string
		opts                                              simulate.Options
		run                                               bool
	)
	c := &cobra.Command{
		Use:   "simulate -x FILE [-S] [-s]",
		Short: "Run the policy engine on a saved CIB (like crm_simulate)",
		Long: `Run ringmaster's policy engine on a Pacemaker CIB file and show what it
would do, in crm_simulate's text format: the current cluster status, the
transition summary, the simulated execution of every action (-S) and the
revised status.

Node states can be changed (--node-up/--node-down/--node-fail) and
operation results injected (-i RSC_TASK_INTERVALMS@NODE=RC) before
scheduling; -F with the same syntax makes an action fail while the
transition is simulated. -O writes the resulting CIB, -G the transition
graph (Pacemaker's transition_graph XML layout). --explain RSC lists every
score contribution for a resource with its cause and why each of its
actions is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if xmlFile == "" {
				return fmt.Errorf("-x/--xml-file is required")
			}
			f, err := os.Open(xmlFile)
			if err != nil {
				return err
			}
			in, err := cib.Parse(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", xmlFile, err)
			}
			opts.Now = time.Now()
			if datetime != "" {
				t, err := parseDatetime(datetime)
				if err != nil {
					return err
				}
				opts.Now, opts.SetDate = t, true
			}
			opts.Schedule = run || saveGraph != ""
			opts.Explain = explain
			opts.Stderr = cmd.ErrOrStderr()
			text := cmd.OutOrStdout()
			if g.json {
				// The text report is replaced by a JSON document.
				text = io.Discard
				opts.Schedule = true
			}
			out, err := simulate.Run(text, in, opts)
			if err != nil {
				return err
			}
			if g.json {
				if err := writeSimulateJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			if saveGraph != "" && out.Graph != nil {
				if err := writeFile(saveGraph, func(w *os.File) error { return out.Graph.WriteXML(w) }); err != nil {
					return err
				}
			}
			if saveOutput != "" {
				if err := writeFile(saveOutput, func(w *os.File) error { _, err := out.CIB.WriteTo(w); return err }); err != nil {
					return err
				}
			}
			if errors.Is(out.TransitionErr, graph.ErrIncomplete) {
				return exitError{code: 1}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&xmlFile, "xml-file", "x", "", "CIB file to simulate")
	fl.BoolVarP(&opts.Simulate, "simulate", "S", false, "simulate the transition's execution and show the resulting cluster status")
	fl.BoolVarP(&run, "run", "R", false, "compute the transition (without executing it)")
	fl.BoolVarP(&opts.ShowScores, "show-scores", "s", false, "show allocation scores")
	fl.StringArrayVarP(&opts.NodeUp, "node-up", "u", nil, "bring a node online before scheduling (repeatable)")
	fl.StringArrayVarP(&opts.NodeDown, "node-down", "d", nil, "take a node offline before scheduling (repeatable)")
	fl.StringArrayVarP(&opts.NodeFail, "node-fail", "f", nil, "mark a node as failed before scheduling (repeatable)")
	fl.StringArrayVarP(&opts.OpInject, "op-inject", "i", nil, "record an operation result before scheduling: RSC_TASK_INTERVALMS@NODE=RC (repeatable)")
	fl.StringArrayVarP(&opts.OpFail, "op-fail", "F", nil, "make an action fail during the simulated transition: RSC_TASK_INTERVALMS@NODE=RC (repeatable)")
	fl.StringVarP(&saveOutput, "save-output", "O", "", "write the resulting CIB to FILE")
	fl.StringVarP(&saveGraph, "save-graph", "G", "", "write the transition graph (XML) to FILE")
	fl.StringVarP(&datetime, "set-datetime", "t", "", "cluster time (RFC 3339 or Unix seconds); default now, or the CIB's execution-date")
	fl.StringVar(&explain, "explain", "", "explain the placement and actions of resource RSC")
	return c
}

// writeSimulateJSON prints the transition as JSON (--json): the summary,
// the scores, the graph's actions and whether the simulated execution
// completed.
func writeSimulateJSON(w io.Writer, out *simulate.Outcome) error {
	doc := struct {
		Transition []string            `json:"transition"`
		Scores     []string            `json:"scores,omitempty"`
		Actions    []*graph.Action     `json:"actions"`
		Error      string              `json:"transition_error,omitempty"`
		Changes    []pengineChangeJSON `json:"changes"`
	}{Actions: []*graph.Action{}}
	for _, c := range out.Summary {
		doc.Transition = append(doc.Transition, c.Text)
		doc.Changes = append(doc.Changes, pengineChangeJSON{Verb: c.Verb, Resource: c.Resource, From: c.From, To: c.To, Node: c.Node, Action: c.Action, Reason: c.Reason, Blocked: c.Blocked})
	}
	for _, l := range out.Scores {
		doc.Scores = append(doc.Scores, l.String())
	}
	if out.Graph != nil {
		doc.Actions = out.Graph.Actions
	}
	if out.TransitionErr != nil {
		doc.Error = out.TransitionErr.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// pengineChangeJSON is one transition summary item in --json output.
type pengineChangeJSON struct {
	Verb     string `json:"verb"`
	Resource string `json:"resource,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Node     string `json:"node,omitempty"`
	Action   string `json:"action,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Blocked  bool   `json:"blocked,omitempty"`
}

func parseDatetime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	var sec int64
	if _, err := fmt.Sscan(strings.TrimSpace(s), &sec); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse --set-datetime %q", s)
}

func writeFile(path string, fn func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
