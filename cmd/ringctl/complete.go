package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	cdbc "ringmaster/clients/confdb"
	"ringmaster/lrmd"
)

// Shell completion (`ringctl completion bash|zsh|fish|powershell`, cobra's)
// of what only the node knows: agent names from the same registry as
// `ringctl agent list`, and confdb keys from the running ringd. Completion
// must never hang a shell or print errors into it: every lookup is bounded
// by completeTimeout and gives no candidates when it fails (ringd not
// running, no permission on the socket).

// completeTimeout bounds one completion's lookups.
const completeTimeout = 2 * time.Second

// agentActions are the actions offered for `agent exec AGENT ACTION`.
var agentActions = []string{lrmd.ActionStart, lrmd.ActionStop, lrmd.ActionMonitor, lrmd.ActionMetaData, lrmd.ActionValidateAll,
	lrmd.ActionPromote, lrmd.ActionDemote, lrmd.ActionNotify, lrmd.ActionReload, lrmd.ActionStatus}

// agentClasses are the classes `agent list CLASS` takes.
var agentClasses = []string{"ocf", "lsb", "builtin"}

// withPrefix keeps the candidates that start with prefix.
func withPrefix(cands []string, prefix string) []string {
	return slices.DeleteFunc(cands, func(s string) bool { return !strings.HasPrefix(s, prefix) })
}

// completeAgent completes the AGENT argument (the first) of `agent meta`
// and `agent exec`, and exec's ACTION.
func (p *agentPaths) completeAgent(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return withPrefix(p.agentNames(cmd), toComplete), cobra.ShellCompDirectiveNoFileComp
	case 1:
		if cmd.Name() == "exec" {
			return withPrefix(slices.Clone(agentActions), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeClass completes `agent list [CLASS]`.
func completeClass(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return withPrefix(slices.Clone(agentClasses), toComplete), cobra.ShellCompDirectiveNoFileComp
}

// agentNames lists the installed agents as `agent list` does (nil when
// the registry cannot be built).
func (p *agentPaths) agentNames(cmd *cobra.Command) []string {
	reg, err := p.registry()
	if err != nil {
		return nil
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	ids, err := reg.List(ctx, "")
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// cmapTypes are the TYPE names of `cmap set KEY TYPE VALUE`.
var cmapTypes = []string{"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "flt", "dbl", "str", "bin"}

// completeCmapKey completes the KEY (or PREFIX) argument of the cmap
// commands from the running ringd's confdb, one dotted component at a
// time ("tot" → "totem.", then "totem.token", ...), and the TYPE of
// `cmap set`.
func completeCmapKey(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch {
		case len(args) == 1 && cmd.Name() == "set":
			return withPrefix(slices.Clone(cmapTypes), toComplete), cobra.ShellCompDirectiveNoFileComp
		case len(args) > 0:
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		keys := cmapKeys(cmd, g, toComplete)
		return nextComponents(keys, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// cmapKeys lists the keys under prefix (nil when ringd does not answer).
func cmapKeys(cmd *cobra.Command, g *globals, prefix string) []string {
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	conn, err := g.dial(ctx)
	if err != nil {
		return nil
	}
	defer conn.Close()
	es, err := cdbc.New(conn).List(ctx, prefix)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

// nextComponents shortens each key to prefix plus its next dotted
// component ("totem." for "totem.token" after "to"), keeping full keys
// that end there, without duplicates, sorted.
func nextComponents(keys []string, prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		c := k
		if i := strings.IndexByte(k[len(prefix):], '.'); i >= 0 {
			c = k[:len(prefix)+i+1]
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
