package config

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `[totem]
cluster_name = "demo"
transport = "udpu"
port = 5405
token = 1000
crypto_cipher = "aes256"
keyfile = "/etc/ringmaster/authkey"

[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"

[[node]]
nodeid = 2
name = "n2"
ring0_addr = "127.0.0.2:6000"
quorum_votes = 2

[[node]]
nodeid = 3
name = "n3"
ring0_addr = "127.0.0.3"

[quorum]
provider = "votequorum"

[logging]
to_stderr = true

[ipc]
socket = "/tmp/x.sock"
allowed_uids = [1000]

[system]
state_dir = "/tmp/state"
`

func TestExampleConfigIsValid(t *testing.T) {
	c, err := Load("../examples/corosync.toml")
	require.NoError(t, err)
	assert.Len(t, c.Nodes, 3)
	// ringd --check passes it on a fresh clone (no keyfile installed), and
	// warns that the shipped "none" is for trusted networks only.
	var out, errOut bytes.Buffer
	require.Equal(t, 0, Check("../examples/corosync.toml", &out, &errOut), errOut.String())
	assert.Contains(t, errOut.String(), "crypto_cipher: \"none\"")
}

func TestParseGood(t *testing.T) {
	c, err := Parse("good.toml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "demo", c.Totem.ClusterName)
	assert.Equal(t, 2, c.Nodes[1].Votes())
	assert.Equal(t, 1, c.Nodes[0].Votes())
	ap, err := c.NodeAddr(&c.Nodes[1])
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2:6000", ap.String())
	ap, _ = c.NodeAddr(&c.Nodes[0])
	assert.Equal(t, "127.0.0.1:5405", ap.String())
	// Unset keys keep their defaults.
	assert.Equal(t, 50, c.Totem.WindowSize)
	assert.Equal(t, []int{1000}, c.IPC.AllowedUIDs)
}

// TestErrors: every kind of bad input names file, line and key.
func TestErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"unknown section", good + "\n[totem_typo]\nfoo = 1\n", "bad.toml:38: totem_typo: unknown key"},
		{"unknown key", strings.Replace(good, "port = 5405", "port = 5405\nprot = 1", 1), "bad.toml:5: totem.prot: unknown key"},
		{"unknown node key", strings.Replace(good, `name = "n2"`, "name = \"n2\"\nbogus = 1", 1), "bad.toml:17: node.bogus: unknown key"},
		{"token zero", strings.Replace(good, "token = 1000", "token = 0", 1), "bad.toml:5: totem.token: must be at least 10 ms, got 0"},
		{"token negative", strings.Replace(good, "token = 1000", "token = -5", 1), "bad.toml:5: totem.token: must be at least 10 ms, got -5"},
		{"wrong type", strings.Replace(good, "token = 1000", `token = "fast"`, 1), "bad.toml:5: totem.token: incompatible types"},
		{"bad transport", strings.Replace(good, `transport = "udpu"`, `transport = "knet"`, 1), `bad.toml:3: totem.transport: must be "udp" (multicast) or "udpu" (unicast), got "knet"`},
		{"dup nodeid", strings.Replace(good, "nodeid = 3", "nodeid = 2", 1), "bad.toml:21: node[2].nodeid: 2 is also the nodeid of node[1]"},
		{"bad addr", strings.Replace(good, `ring0_addr = "127.0.0.3"`, `ring0_addr = "nowhere"`, 1), `bad.toml:23: node[2].ring0_addr: not an IP or IP:PORT: "nowhere"`},
		{"bad cipher", strings.Replace(good, `crypto_cipher = "aes256"`, `crypto_cipher = "rot13"`, 1), "bad.toml:6: totem.crypto_cipher"},
		{"two_node with 3 nodes", strings.Replace(good, `provider = "votequorum"`, "provider = \"votequorum\"\ntwo_node = true", 1), "bad.toml:27: quorum.two_node: two_node needs exactly 2 nodes"},
		{"syntax", good + "\n[totem\n", "bad.toml:39"},
		{"bad mcast", strings.Replace(good, `transport = "udpu"`, "transport = \"udp\"\nmcast_addr = \"10.0.0.1\"", 1), "bad.toml:4: totem.mcast_addr"},
		{"max_messages above window", strings.Replace(good, "token = 1000", "token = 1000\nmax_messages = 60", 1), "bad.toml:6: totem.max_messages: must not exceed window_size (50), got 60"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(tc.edit))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid), "errors.Is(err, ErrInvalid)")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	bad := strings.Replace(good, "token = 1000", "token = 1", 1)
	bad = strings.Replace(bad, "port = 5405", "port = 70000", 1)
	_, err := Parse("bad.toml", []byte(bad))
	var es Errors
	require.ErrorAs(t, err, &es)
	assert.Len(t, es, 2)
}

func TestEffective(t *testing.T) {
	c, err := Parse("good.toml", []byte(good))
	require.NoError(t, err)
	e := c.Effective()
	// 3 nodes: token + 1 * coefficient.
	assert.Equal(t, 1650*time.Millisecond, e.Token)
	assert.Equal(t, 1980*time.Millisecond, e.Consensus)
	assert.Equal(t, int64(392), e.TokenRetransmit.Milliseconds())
	assert.Equal(t, time.Duration(0.8*float64(e.TokenRetransmit)), e.Hold)

	// Two nodes: no coefficient; explicit consensus wins.
	c.Nodes = c.Nodes[:2]
	c.Totem.Consensus = 5000
	e = c.Effective()
	assert.Equal(t, 1000*time.Millisecond, e.Token)
	assert.Equal(t, 5000*time.Millisecond, e.Consensus)
	fields := map[string]int64{}
	for _, f := range e.Fields() {
		fields[f.Name] = f.Value
	}
	assert.Equal(t, int64(1000), fields["token"])
	assert.Equal(t, int64(5000), fields["consensus"])
}

func TestConsensusBelowToken(t *testing.T) {
	_, err := Parse("bad.toml", []byte(strings.Replace(good, "token = 1000", "token = 1000\nconsensus = 500", 1)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "totem.consensus: must be at least the effective token (1650 ms), got 500")
}

func TestLocalNode(t *testing.T) {
	c, err := Parse("good.toml", []byte(good))
	require.NoError(t, err)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }

	n, err := c.LocalNode("", []netip.Addr{a("10.0.0.1"), a("127.0.0.2")})
	require.NoError(t, err)
	assert.Equal(t, 2, n.NodeID)

	n, err = c.LocalNode("n3", nil)
	require.NoError(t, err)
	assert.Equal(t, 3, n.NodeID)
	n, err = c.LocalNode("1", nil)
	require.NoError(t, err)
	assert.Equal(t, 1, n.NodeID)

	_, err = c.LocalNode("", []netip.Addr{a("127.0.0.1"), a("127.0.0.2")})
	assert.ErrorIs(t, err, ErrNoLocalNode)
	assert.Contains(t, err.Error(), "use --node")
	_, err = c.LocalNode("", []netip.Addr{a("10.9.9.9")})
	assert.ErrorIs(t, err, ErrNoLocalNode)
	_, err = c.LocalNode("n9", nil)
	assert.ErrorIs(t, err, ErrNoLocalNode)
}

// goodWithKey is good with its keyfile in dir, written there.
func goodWithKey(t *testing.T, dir string) string {
	t.Helper()
	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o400))
	return strings.Replace(good, "/etc/ringmaster/authkey", key, 1)
}

func TestCheckExitStatus(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	require.NoError(t, os.WriteFile(p, []byte(goodWithKey(t, dir)), 0o644))
	var out, errOut strings.Builder
	assert.Equal(t, 0, Check(p, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "token                                1650")
	assert.Empty(t, errOut.String())
	require.NoError(t, os.WriteFile(p, []byte(goodWithKey(t, dir)+"\nbogus = 1\n"), 0o644))
	out.Reset()
	errOut.Reset()
	assert.Equal(t, 1, Check(p, &out, &errOut))
	assert.Contains(t, errOut.String(), "c.toml:38: system.bogus: unknown key")
}

// TestCheckKeyfile: --check refuses every keyfile startup refuses (missing,
// too short, too long, not a file), naming the file, line and key; a
// key readable by others is only a warning, as startup accepts it.
func TestCheckKeyfile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	key := filepath.Join(dir, "authkey")
	cfg := goodWithKey(t, dir)
	check := func(content string) (int, string) {
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		var out, errOut strings.Builder
		code := Check(p, &out, &errOut)
		return code, errOut.String()
	}
	code, msg := check(cfg)
	require.Equal(t, 0, code, msg)

	require.NoError(t, os.Remove(key))
	code, msg = check(cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "c.toml:7: totem.keyfile: stat "+key+": no such file or directory")

	require.NoError(t, os.WriteFile(key, []byte("12345678"), 0o400))
	code, msg = check(cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "c.toml:7: totem.keyfile: "+key+": a key is 16-4096 bytes, got 8")

	require.NoError(t, os.Chmod(key, 0o600))
	require.NoError(t, os.WriteFile(key, make([]byte, 4097), 0o600))
	code, _ = check(cfg)
	assert.Equal(t, 1, code)

	require.NoError(t, os.Remove(key))
	require.NoError(t, os.Mkdir(key, 0o700))
	code, msg = check(cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "is not a regular file")
	require.NoError(t, os.Remove(key))

	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef"), 0o644))
	withPrev := strings.Replace(cfg, "keyfile = ", "previous_keyfiles = [\""+key+"\", \""+key+".old\"]\nkeyfile = ", 1)
	code, msg = check(withPrev)
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "c.toml:7: totem.previous_keyfiles[1]: stat "+key+".old: no such file or directory")

	code, msg = check(cfg)
	assert.Equal(t, 0, code, msg)
	assert.Contains(t, msg, "warning: "+p+":7: totem.keyfile: "+key+" is readable by group or others")

	code, msg = check(strings.Replace(cfg, `crypto_cipher = "aes256"`, `crypto_cipher = "none"`, 1))
	assert.Equal(t, 0, code, "no keys with crypto_cipher none: %s", msg)
}

// FuzzParse: arbitrary input never panics, and an accepted configuration
// always validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[totem]\ntoken = 5\n"))
	f.Add([]byte("[[node]]\nnodeid = 1\n[[node]]\n"))
	f.Add([]byte("a = [\n1,\n2]\n[x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted a configuration that does not validate: %v", verr)
			}
			_ = c.Effective()
		}
	})
}

func TestDiff(t *testing.T) {
	a, err := Parse("a.toml", []byte(good))
	require.NoError(t, err)
	assert.Empty(t, Diff(a, a))
	b, err := Parse("b.toml", []byte(strings.NewReplacer(
		"token = 1000", "token = 300",
		`ring0_addr = "127.0.0.3"`, `ring0_addr = "127.0.0.4"`,
		"allowed_uids = [1000]", "allowed_uids = [1000, 1001]",
		"quorum_votes = 2", "quorum_votes = 3",
	).Replace(good)))
	require.NoError(t, err)
	assert.Equal(t, []Change{
		{Key: "totem.token", Old: "1000", New: "300"},
		{Key: "node[1].quorum_votes", Old: "2", New: "3"},
		{Key: "node[2].ring0_addr", Old: `"127.0.0.3"`, New: `"127.0.0.4"`},
		{Key: "ipc.allowed_uids", Old: "[1000]", New: "[1000 1001]"},
	}, Diff(a, b))
	c, err := Parse("c.toml", []byte(good+"\n[[node]]\nnodeid = 4\nring0_addr = \"127.0.0.9\"\n"))
	require.NoError(t, err)
	assert.Equal(t, []Change{{Key: "node", Old: "3 entries", New: "4 entries"}}, Diff(a, c))
}
