package corosyncconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringmaster/config"
	"ringmaster/internal/golden"
)

// TestConvertShapes converts corosync.conf files in the shapes Debian's
// corosync package and `pcs cluster setup` write (and a corosync 2
// multicast one), and compares the corosync.toml and the warnings with
// testdata/NAME.out. Every output is also parsed and validated as ringd
// would.
func TestConvertShapes(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	if len(files) < 3 {
		t.Fatalf("want at least 3 sample files, have %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			root, err := Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(root, Options{Name: filepath.Base(f)})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse("converted.toml", []byte(res.TOML))
			if err != nil {
				t.Fatalf("converted file does not load: %v\n%s", err, res.TOML)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("converted file is invalid: %v\n%s", err, res.TOML)
			}
			out := res.TOML + "# warnings:\n# " + strings.Join(res.Warnings, "\n# ") + "\n"
			golden.File(t, strings.TrimSuffix(f, ".conf")+".out", out)
		})
	}
}

func TestConvertCarriesValues(t *testing.T) {
	data, _ := os.ReadFile("testdata/udp.conf")
	root, err := Parse("udp.conf", data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(root, Options{Name: "udp.conf"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("x.toml", []byte(res.TOML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Totem.Transport != "udp" || cfg.Totem.McastAddr != "239.255.1.1" || cfg.Totem.Token != 1000 ||
		cfg.Totem.TokenCoefficient != 0 || cfg.Totem.Consensus != 1500 || cfg.Totem.Port != 5405 {
		t.Errorf("totem not carried over: %+v", cfg.Totem)
	}
	if len(cfg.Nodes) != 3 || cfg.Nodes[2].NodeID != 3 || cfg.Nodes[0].Votes() != 2 {
		t.Errorf("nodes: %+v", cfg.Nodes)
	}
	q := cfg.Quorum
	if q.ExpectedVotes != 4 || !q.WaitForAllEffective() || !q.LastManStanding || q.LastManStandingWindow != 20000 ||
		!q.AutoTieBreaker || q.AutoTieBreakerNode != "lowest" {
		t.Errorf("quorum: %+v", q)
	}
	if len(cfg.IPC.AllowedUIDs) != 1 || cfg.IPC.AllowedUIDs[0] != 1001 {
		t.Errorf("ipc: %+v", cfg.IPC)
	}
	warned := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"udp.conf:6: totem.secauth", "udp.conf:12: totem.interface.bindnetaddr", "uidgid.gid", "no nodeid"} {
		if !strings.Contains(warned, w) {
			t.Errorf("no warning %q in:\n%s", w, warned)
		}
	}
}

func TestConvertErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"totem {\n cluster_name: x\n}\n", "nodelist"},
		{"nodelist {\n node {\n  ring0_addr: db1.example\n  nodeid: 1\n }\n}\n", "x.conf:3: nodelist.node.ring0_addr"},
		{"nodelist {\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: one\n }\n}\n", "x.conf:4: nodeid"},
		{"quorum {\n provider: corosync_qdevice\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n }\n}\n", "x.conf:2: quorum.provider"},
	} {
		root, err := Parse("x.conf", []byte(tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Convert(root, Options{Name: "x.conf"})
		if !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %q", tc.conf, err, tc.want)
		}
	}
}

func TestResolveHostNames(t *testing.T) {
	conf := "nodelist {\n node {\n  ring0_addr: db1\n  nodeid: 1\n }\n}\n"
	root, _ := Parse("x.conf", []byte(conf))
	res, err := Convert(root, Options{Name: "x.conf", Resolve: func(h string) (string, error) { return "10.9.8.7", nil }})
	if err != nil || !strings.Contains(res.TOML, `ring0_addr = "10.9.8.7"`) {
		t.Errorf("resolved: %v\n%v", err, res)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"totem {\n", "f:1: section \"totem\" is never closed"},
		{"}\n", "f:1: '}' without"},
		{"totem {\n what is this\n}\n", "f:2: expected"},
		{"{\n}\n", "f:1: bad section name"},
	} {
		_, err := Parse("f", []byte(tc.conf))
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func FuzzParseConvert(f *testing.F) {
	for _, p := range []string{"testdata/debian.conf", "testdata/pcs.conf", "testdata/udp.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a {\nb {\nc: d\n}\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		res, err := Convert(root, Options{Name: "fuzz"})
		if err != nil {
			return
		}
		// What Convert accepts must load and validate.
		cfg, err := config.Parse("fuzz.toml", []byte(res.TOML))
		if err != nil {
			t.Fatalf("accepted conversion does not load: %v\n%s", err, res.TOML)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted conversion is invalid: %v", err)
		}
	})
}
