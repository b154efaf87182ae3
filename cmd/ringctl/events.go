package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/clients"
	"ringmaster/internal/events"
)

// followWait is how long one --follow request waits for news before
// asking again (the node answers as soon as an event arrives).
const followWait = 10 * time.Second

func newEventsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		since  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "events [--follow] [--since DURATION]",
		Short: "Show what happened on this node: membership, quorum, CPG joins and leaves, reloads",
		Long: `Show the node's event log: membership and ring id changes (with the nodes
that joined and left), quorum changes, CPG joins and leaves, configuration
reloads. ringd keeps the last 10,000 events in memory (from its start) and
writes each to its log too.

--since 10m shows the last ten minutes; --follow keeps printing events as
they happen until interrupted; --json prints one JSON object a line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since < 0 {
				return fmt.Errorf("ringctl events: --since must not be negative, got %v", since)
			}
			ctx := cmd.Context()
			dctx, cancel := context.WithTimeout(ctx, requestTimeout)
			conn, err := g.dial(dctx)
			cancel()
			if err != nil {
				return err
			}
			defer conn.Close()
			q := events.Query{}
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			w := cmd.OutOrStdout()
			for {
				r, err := queryEvents(ctx, conn, q)
				if err != nil {
					if follow && errors.Is(ctx.Err(), context.Canceled) {
						return nil
					}
					return err
				}
				for _, e := range r.Events {
					if err := printEvent(w, e, g.json); err != nil {
						return err
					}
				}
				if !follow {
					return nil
				}
				q = events.Query{After: r.Last, WaitMS: followWait.Milliseconds()}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().DurationVar(&since, "since", 0, "only events of the last DURATION (e.g. 30s, 10m, 2h)")
	return cmd
}

// queryEvents asks the node's status service for events.
func queryEvents(ctx context.Context, conn *clients.Conn, q events.Query) (*events.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout+time.Duration(q.WaitMS)*time.Millisecond)
	defer cancel()
	b, _ := json.Marshal(q)
	p, err := conn.Call(ctx, clients.ServiceStatus, clients.MsgEvents, b)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	var r events.Reply
	if err := json.Unmarshal(p, &r); err != nil {
		return nil, fmt.Errorf("events: bad reply: %w", err)
	}
	return &r, nil
}

// printEvent writes one event: a JSON object a line with --json, else
// "TIME  KIND  MESSAGE  key=value ...".
func printEvent(w io.Writer, e events.Event, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(e)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-13s %s", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Kind, e.Message)
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		fmt.Fprintf(&b, "  %s=%s", k, fieldString(e.Fields[k]))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// fieldString renders a field value decoded from JSON: lists as [a b c].
func fieldString(v any) string {
	switch x := v.(type) {
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = fieldString(e)
		}
		return "[" + strings.Join(s, " ") + "]"
	case string:
		if x == "" || strings.ContainsAny(x, " \t\"") {
			return fmt.Sprintf("%q", x)
		}
		return x
	default:
		return fmt.Sprint(x)
	}
}
