package config

import (
	"fmt"
	"io"
)

// Describe writes the effective configuration for `ringd --check`: the
// derived timings and the node list, as an operator wants to see them.
func (c *Config) Describe(w io.Writer) {
	t := &c.Totem
	fmt.Fprintf(w, "configuration %s is valid\n", c.Path)
	fmt.Fprintf(w, "totem: cluster_name=%q transport=%s port=%d crypto_cipher=%s", t.ClusterName, t.Transport, t.Port, t.CryptoCipher)
	if t.Transport == "udp" {
		fmt.Fprintf(w, " mcast_addr=%s ttl=%d", t.McastAddr, t.TTL)
		// The groups in use: per link, IPv6 links in IPv6 (LinkMcast).
		for _, k := range c.Links() {
			if g, err := c.LinkMcast(k); err == nil && (k > 0 || g.Addr().String() != t.McastAddr) {
				fmt.Fprintf(w, " link%d_group=%s", k, g)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "effective totem values (runtime.config.totem.*):")
	for _, f := range c.Effective().Fields() {
		fmt.Fprintf(w, "  %-36s %d\n", f.Name, f.Value)
	}
	fmt.Fprintf(w, "nodes (%d):\n", len(c.Nodes))
	for i := range c.Nodes {
		n := &c.Nodes[i]
		ap, _ := c.NodeAddr(n)
		fmt.Fprintf(w, "  nodeid=%d name=%s addr=%s quorum_votes=%d", n.NodeID, n.Name, ap, n.Votes())
		for _, k := range c.Links() {
			if k > 0 {
				lap, _ := c.NodeLinkAddr(n, k)
				fmt.Fprintf(w, " ring%d_addr=%s", k, lap)
			}
		}
		fmt.Fprintln(w)
	}
	if links := c.Links(); len(links) > 1 {
		fmt.Fprintf(w, "links: %v link_mode=%s", links, t.LinkMode)
		for _, k := range links {
			fmt.Fprintf(w, " link%d_priority=%d", k, c.LinkPriority(k))
		}
		fmt.Fprintln(w)
	}
	q := &c.Quorum
	fmt.Fprintf(w, "quorum: provider=%s expected_votes=%d two_node=%v wait_for_all=%v last_man_standing=%v auto_tie_breaker=%v allow_downscale=%v\n",
		q.Provider, q.ExpectedVotes, q.TwoNode, q.WaitForAllEffective(), q.LastManStanding, q.AutoTieBreaker, q.AllowDownscale)
	fmt.Fprintf(w, "ipc: socket=%s   system: state_dir=%s\n", c.IPC.Socket, c.System.StateDir)
}

// Warnings lists problems that do not stop the daemon (a keyfile readable
// by others, for instance); what would stop it is an error of LoadKeys.
func (c *Config) Warnings() []string {
	return c.keyWarnings()
}

// Check loads and validates path and reads its keyfiles as startup does,
// writing the effective configuration (and warnings) to out or every error
// to errOut. It returns the exit status: 0 valid, 1 invalid. `ringd
// --check` and `ringctl config check` share it, so a systemd
// ExecStartPre=ringd --check catches what would stop ringd.
func Check(path string, out, errOut io.Writer) int {
	c, err := Load(path)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	if _, err := c.LoadKeys(); err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	c.Describe(out)
	for _, w := range c.Warnings() {
		fmt.Fprintln(errOut, "warning:", w)
	}
	return 0
}
