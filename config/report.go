package config

import (
	"fmt"
	"io"
	"os"
)

// Describe writes the effective configuration for `ringd --check`: the
// derived timings and the node list, as an operator wants to see them.
func (c *Config) Describe(w io.Writer) {
	t := &c.Totem
	fmt.Fprintf(w, "configuration %s is valid\n", c.Path)
	fmt.Fprintf(w, "totem: cluster_name=%q transport=%s port=%d crypto_cipher=%s", t.ClusterName, t.Transport, t.Port, t.CryptoCipher)
	if t.Transport == "udp" {
		fmt.Fprintf(w, " mcast_addr=%s ttl=%d", t.McastAddr, t.TTL)
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
		fmt.Fprintf(w, "  nodeid=%d name=%s addr=%s quorum_votes=%d\n", n.NodeID, n.Name, ap, n.Votes())
	}
	q := &c.Quorum
	fmt.Fprintf(w, "quorum: provider=%s expected_votes=%d two_node=%v wait_for_all=%v last_man_standing=%v auto_tie_breaker=%v allow_downscale=%v\n",
		q.Provider, q.ExpectedVotes, q.TwoNode, q.WaitForAllEffective(), q.LastManStanding, q.AutoTieBreaker, q.AllowDownscale)
	fmt.Fprintf(w, "ipc: socket=%s   system: state_dir=%s\n", c.IPC.Socket, c.System.StateDir)
}

// Warnings lists problems that do not stop validation but will stop the
// daemon on this host (a keyfile that cannot be read, for instance).
func (c *Config) Warnings() []string {
	var w []string
	if c.Totem.CryptoCipher != "none" {
		for _, p := range append([]string{c.Totem.Keyfile}, c.Totem.PreviousKeyfiles...) {
			if _, err := os.Stat(p); err != nil {
				w = append(w, fmt.Sprintf("%s: totem.keyfile: %v (create it with `ringctl keygen -o %s`)", c.Path, err, p))
			}
		}
	}
	return w
}

// Check loads and validates path, writing the effective configuration (and
// warnings) to out or every error to errOut. It returns the exit status:
// 0 valid, 1 invalid. `ringd --check` and `ringctl config check` share it.
func Check(path string, out, errOut io.Writer) int {
	c, err := Load(path)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	c.Describe(out)
	for _, w := range c.Warnings() {
		fmt.Fprintln(errOut, "warning:", w)
	}
	return 0
}
