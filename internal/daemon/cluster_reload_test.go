package daemon

import (
	"fmt"
	"slices"
	"testing"

	"ringmaster/config"
	"ringmaster/reconfig/wire"
)

func parseTOML(t *testing.T, name, extraTotem string) *config.Config {
	t.Helper()
	c, err := config.Parse(name, []byte(fmt.Sprintf(`[totem]
cluster_name = "c"
crypto_cipher = "aes256"
keyfile = "/etc/%s.key"
%s

[[node]]
nodeid = 1
ring0_addr = "127.0.0.1"

[[node]]
nodeid = 2
ring0_addr = "127.0.0.2"
`, name, extraTotem)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDigestsCoverClusterWideParts: key file paths may differ between
// nodes, the key itself and every other cluster-wide setting may not.
func TestDigestsCoverClusterWideParts(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a := digests(parseTOML(t, "a", ""), [][]byte{key})
	if b := digests(parseTOML(t, "b", ""), [][]byte{key}); b != a {
		t.Fatal("keyfile paths change the digests")
	}
	other := digests(parseTOML(t, "a", ""), [][]byte{[]byte("another key, 32 bytes long......")})
	if other[wire.SectionKey] == a[wire.SectionKey] || other[wire.SectionTotem] != a[wire.SectionTotem] {
		t.Fatal("the key's digest")
	}
	tok := digests(parseTOML(t, "a", "token = 500"), [][]byte{key})
	if tok[wire.SectionTotem] == a[wire.SectionTotem] || tok[wire.SectionNodes] != a[wire.SectionNodes] {
		t.Fatal("the token's digest")
	}
}

// TestLiveReloadable: what needs a restart stays as running and is
// reported pending; the rest is taken from the file.
func TestLiveReloadable(t *testing.T) {
	running := parseTOML(t, "a", "")
	file := parseTOML(t, "a", "token = 500\nnetmtu = 1400")
	next := liveReloadable(running, file)
	if next.Totem.Token != 500 || next.Totem.NetMTU != running.Totem.NetMTU {
		t.Fatalf("token %d netmtu %d", next.Totem.Token, next.Totem.NetMTU)
	}
	var pending []string
	for _, c := range config.Diff(next, file) {
		pending = append(pending, c.Key)
	}
	if !slices.Equal(pending, []string{"totem.netmtu"}) {
		t.Fatalf("pending %v", pending)
	}
}
