package daemon

import (
	"fmt"
	"strings"
	"testing"

	"ringmaster/config"
	"ringmaster/totem"
)

func namedNodes(t *testing.T, n1, n2, n3 string) *config.Config {
	t.Helper()
	c, err := config.Parse("n.toml", fmt.Appendf(nil, `[totem]
cluster_name = "c"
crypto_cipher = "none"

[[node]]
nodeid = 1
name = %q
ring0_addr = "127.0.0.1"

[[node]]
nodeid = 2
name = %q
ring0_addr = "127.0.0.2"

[[node]]
nodeid = 3
name = %q
ring0_addr = "127.0.0.3"
`, n1, n2, n3))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadRefusesRenamingAMember: the resource manager knows a node by
// its name (node_state's uname, constraints); renaming a running member
// would leave its CIB entry under the old name while the controller uses
// the new one. Like a changed address, it is refused naming FILE:LINE
// until the node is stopped; a node outside the ring may be renamed.
func TestReloadRefusesRenamingAMember(t *testing.T) {
	d := &Daemon{node: 1}
	running := namedNodes(t, "a", "b", "c")
	members := []totem.NodeID{1, 2}
	err := d.checkReloadable(running, namedNodes(t, "a", "web2", "c"), members)
	if err == nil || !strings.Contains(err.Error(), "n.toml:12: node[1].name") || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("member 2 renamed: %v", err)
	}
	if err := d.checkReloadable(running, namedNodes(t, "self", "b", "c"), members); err == nil || !strings.Contains(err.Error(), "node[0].name") {
		t.Fatalf("this node renamed: %v", err)
	}
	if err := d.checkReloadable(running, namedNodes(t, "a", "b", "web3"), members); err != nil {
		t.Fatalf("node 3 (stopped) renamed: %v", err)
	}
}
