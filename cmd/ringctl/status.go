package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/clients"
	"ringmaster/config"
	"ringmaster/config/corosyncconf"
)

// dial connects to the node's ringd with a bounded wait.
func (g *globals) dial(ctx context.Context) (*clients.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return clients.Dial(dctx, g.socket)
}

// requestTimeout bounds one ringctl command's requests to ringd.
const requestTimeout = 15 * time.Second

// withClient dials ringd, wraps the connection in a service client (as
// quorum.New or confdb's New do) and runs f with a deadline of
// requestTimeout.
func withClient[C any](cmd *cobra.Command, g *globals, wrap func(*clients.Conn) C, f func(ctx context.Context, c C) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	conn, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(ctx, wrap(conn))
}

// printJSON writes v indented, as every --json output does.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "n1 -> n2", not "n1 -\u003e n2"
	return enc.Encode(v)
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this node, its ring and the members (like corosync-cfgtool -s)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
}

func printStatus(w io.Writer, st *clients.Status) {
	fmt.Fprintf(w, "Node %d (%s) of cluster %q, ringd %s\n", st.NodeID, st.Name, st.ClusterName, st.Version)
	fmt.Fprintf(w, "Ring %d.%d  state %s  transport %s  token %d ms  consensus %d ms\n",
		st.RingID.Rep, st.RingID.Seq, st.State, st.Transport, st.TokenMS, st.ConsensusMS)
	if st.Quorate != nil {
		q := "no"
		if *st.Quorate {
			q = "yes"
		}
		fmt.Fprintf(w, "Quorate: %s\n", q)
	}
	fmt.Fprintf(w, "Members (%d):\n", len(st.Members))
	for _, m := range st.Members {
		self := ""
		if m.NodeID == st.NodeID {
			self = " (local)"
		}
		fmt.Fprintf(w, "  %6d  %-12s %s%s\n", m.NodeID, m.Name, m.Addr, self)
	}
	printLinks(w, st)
}

// printLinks lists every link to every other node, as corosync-cfgtool
// -n does: a node is reachable while one of its links is up.
func printLinks(w io.Writer, st *clients.Status) {
	if len(st.Links) == 0 {
		return
	}
	fmt.Fprintf(w, "Links (%s):\n", st.LinkMode)
	for i, l := range st.Links {
		if i == 0 || st.Links[i-1].NodeID != l.NodeID {
			reach := "unreachable"
			for _, o := range st.Links {
				if o.NodeID == l.NodeID && o.State == "up" {
					reach = "reachable"
				}
			}
			fmt.Fprintf(w, "  node %d (%s): %s\n", l.NodeID, l.Name, reach)
		}
		rtt := ""
		if l.State == "up" {
			rtt = fmt.Sprintf("  rtt %.2f ms", l.RTTMS)
		}
		fmt.Fprintf(w, "    link %d  %-4s  %s -> %s%s\n", l.Link, l.State, l.Local, l.Remote, rtt)
	}
}

func newKeygenCmd(g *globals) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen -o FILE",
		Short: "Write a random 256-bit authentication key, mode 0400 (like corosync-keygen)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("keygen: -o FILE is required")
			}
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				_ = os.Remove(out)
			}
			f, err := os.OpenFile(out, flags, 0o400)
			if err != nil {
				return fmt.Errorf("keygen: %w (use --force to replace it)", err)
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": out, "bits": 256, "mode": "0400"})
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote a 256-bit key to %s (mode 0400); copy it to every node\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "key file to write")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}

func newConfigCmd(g *globals) *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Configuration tools"}
	cfg.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a corosync.toml and print the effective values (same as ringd --check)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.json {
				return checkJSON(cmd.OutOrStdout(), args[0])
			}
			if code := config.Check(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitError{code}
			}
			return nil
		},
	})
	cfg.AddCommand(newImportCorosyncCmd(g))
	cfg.AddCommand(newConfigReloadCmd(g))
	return cfg
}

// checkJSON is `config check --json`: the same checks as config.Check
// (load, validate, read the keyfiles), as one object; exit status 1 when
// the file is not valid.
func checkJSON(w io.Writer, path string) error {
	out := map[string]any{"file": path, "valid": false, "errors": []string{}, "warnings": []string{}}
	c, err := config.Load(path)
	if err == nil {
		_, err = c.LoadKeys()
	}
	if err != nil {
		var errs []string
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				errs = append(errs, line)
			}
		}
		out["errors"] = errs
		if perr := printJSON(w, out); perr != nil {
			return perr
		}
		return exitError{1}
	}
	eff := map[string]int64{}
	for _, f := range c.Effective().Fields() {
		eff[f.Name] = f.Value
	}
	nodes := []map[string]any{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		ap, _ := c.NodeAddr(n)
		nodes = append(nodes, map[string]any{"nodeid": n.NodeID, "name": n.Name, "addr": ap.String(), "quorum_votes": n.Votes()})
	}
	out["valid"] = true
	out["warnings"] = append([]string{}, c.Warnings()...)
	out["cluster_name"] = c.Totem.ClusterName
	out["transport"] = c.Totem.Transport
	out["crypto_cipher"] = c.Totem.CryptoCipher
	out["effective"] = eff
	out["nodes"] = nodes
	return printJSON(w, out)
}

// newImportCorosyncCmd converts a corosync.conf into corosync.toml.
func newImportCorosyncCmd(g *globals) *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "import-corosync FILE",
		Short: "Convert corosync's corosync.conf into corosync.toml (warns about every option it cannot carry over)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			root, err := corosyncconf.Parse(args[0], data)
			if err != nil {
				return err
			}
			res, err := corosyncconf.Convert(root, corosyncconf.Options{Name: args[0], Resolve: resolveHost})
			if err != nil {
				return err
			}
			if outFile != "" {
				if err := os.WriteFile(outFile, []byte(res.TOML), 0o644); err != nil {
					return err
				}
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"toml": res.TOML, "warnings": res.Warnings, "written": outFile})
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if outFile == "" {
				_, err = io.WriteString(cmd.OutOrStdout(), res.TOML)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&outFile, "output", "o", "", "write corosync.toml to this file instead of printing it")
	return cmd
}

// resolveHost turns a node's host name into its first address, as corosync
// would when it starts.
func resolveHost(host string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}
