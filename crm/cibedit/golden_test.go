package cibedit_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
	"ringmaster/crm/simulate"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.out from the current output (only for understood diffs)")

// running returns testdata/base.xml after one simulated transition: every
// resource started (web on node1, db on node2) and its history recorded.
func running(t *testing.T) *cib.CIB {
	t.Helper()
	f, err := os.ReadFile("testdata/base.xml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cib.Parse(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return sim(t, c, simulate.Options{Simulate: true}, nil)
}

func sim(t *testing.T, c *cib.CIB, opts simulate.Options, w *bytes.Buffer) *cib.CIB {
	t.Helper()
	opts.Now = time.Unix(1700000000, 0)
	var out bytes.Buffer
	if w == nil {
		w = &out
	}
	o, err := simulate.Run(w, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return o.CIB
}

func xmlText(t *testing.T, c *cib.CIB) string {
	t.Helper()
	var b strings.Builder
	if _, err := c.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// lineDiff lists the lines only in a ("-") and only in b ("+"), trimmed.
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[strings.TrimSpace(l)]++
	}
	var plus []string
	for _, l := range strings.Split(b, "\n") {
		l = strings.TrimSpace(l)
		if count[l] > 0 {
			count[l]--
			continue
		}
		plus = append(plus, "+ "+l)
	}
	var minus []string
	for _, l := range strings.Split(a, "\n") {
		l = strings.TrimSpace(l)
		if count[l] > 0 {
			count[l]--
			minus = append(minus, "- "+l)
		}
	}
	return strings.Join(append(minus, plus...), "\n") + "\n"
}

// TestEditGolden applies each edit to the running cluster and records the
// change to the CIB and the scheduler's response (crm simulate -S) in
// testdata/NAME.out. When crm_verify is installed, every result must be a
// valid Pacemaker CIB.
func TestEditGolden(t *testing.T) {
	base := running(t)
	failed := func(t *testing.T) *cib.CIB {
		// db's monitor failed once on node2; the simulator recovers it in
		// place, leaving a fail count and a last_failure entry.
		return sim(t, base, simulate.Options{Simulate: true, OpInject: []string{"db_monitor_10000@node2=1"}}, nil)
	}
	cases := []struct {
		name string
		from func(t *testing.T) *cib.CIB
		edit func(c *cib.CIB) (*cib.CIB, error)
	}{
		{"move", nil, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "web", "node2") }},
		{"ban", nil, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Ban(c, "web", "node1") }},
		{"move-clear", nil, func(c *cib.CIB) (*cib.CIB, error) {
			c, err := cibedit.Move(c, "db", "node3")
			if err != nil {
				return nil, err
			}
			return cibedit.Clear(c, "db", "")
		}},
		{"stop", nil, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Stop(c, "web") }},
		{"restart-stop", nil, func(c *cib.CIB) (*cib.CIB, error) {
			p, err := cibedit.Restart(c, "db")
			if err != nil {
				return nil, err
			}
			return p.Stop, nil
		}},
		{"standby", nil, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Standby(c, "node1", true) }},
		{"cleanup", failed, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Cleanup(c, "db", "") }},
		{"refresh-node", nil, func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Refresh(c, "web", "node1") }},
		{"attr-transient", nil, func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.SetAttr(c, cibedit.Attr{Name: "pingd", Node: "node2", Lifetime: cibedit.Reboot}, "100")
		}},
		{"cluster-option", nil, func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.SetAttr(c, cibedit.Attr{Name: "stop-all-resources"}, "true")
		}},
	}
	verify, _ := exec.LookPath("crm_verify")
	if verify == "" && os.Getenv("CI") == "true" {
		t.Fatal("crm_verify not found (apt-get install pacemaker-cli-utils); CI=true needs it")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			if tc.from != nil {
				in = tc.from(t)
			}
			before := xmlText(t, in)
			got, err := tc.edit(in)
			if err != nil {
				t.Fatal(err)
			}
			if xmlText(t, in) != before {
				t.Fatal("the edit modified its input")
			}
			after := xmlText(t, got)
			var out bytes.Buffer
			fmt.Fprintf(&out, "# %s: CIB changes\n%s\n# crm simulate -S\n", tc.name, lineDiff(before, after))
			sim(t, got, simulate.Options{Simulate: true}, &out)
			path := filepath.Join("testdata", tc.name+".out")
			if *rewrite {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if string(want) != out.String() {
				t.Errorf("%s differs from the output:\n%s", path, out.String())
			}
			if verify != "" {
				f := filepath.Join(t.TempDir(), "cib.xml")
				os.WriteFile(f, []byte(after), 0o644)
				if msg, err := exec.Command(verify, "--xml-file", f).CombinedOutput(); err != nil {
					t.Errorf("crm_verify rejects the edited CIB: %v\n%s", err, msg)
				}
			}
		})
	}
}
