package pengine_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"ringmaster/crm/simulate"
)

// rewrite regenerates testdata/*.out from the current scheduler. Use it
// only once a diff is understood (the expected outputs were checked against
// Pacemaker 2.1.5's crm_simulate when they were written).
var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.out golden files")

// argsRE finds the optional "<!-- args: name=value ... -->" comment with
// which a case asks for crm_simulate options (node-fail, node-down,
// node-up, op-inject, op-fail, explain).
var argsRE = regexp.MustCompile(`<!-- args: (.*?) -->`)

func caseOptions(t *testing.T, xml []byte) simulate.Options {
	t.Helper()
	opts := simulate.Options{Now: goldenNow, Simulate: true, ShowScores: true}
	m := argsRE.FindSubmatch(xml)
	if m == nil {
		return opts
	}
	for _, kv := range strings.Fields(string(m[1])) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad args item %q", kv)
		}
		switch k {
		case "node-fail":
			opts.NodeFail = append(opts.NodeFail, v)
		case "node-down":
			opts.NodeDown = append(opts.NodeDown, v)
		case "node-up":
			opts.NodeUp = append(opts.NodeUp, v)
		case "op-inject":
			opts.OpInject = append(opts.OpInject, v)
		case "op-fail":
			opts.OpFail = append(opts.OpFail, v)
		case "explain":
			opts.Explain = v
		default:
			t.Fatalf("unknown args item %q", k)
		}
	}
	return opts
}

// TestFeatureCases runs the hand-written cases in testdata: one small CIB
// per feature, with the expected `simulate -S -s` output next to it.
func TestFeatureCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := simulate.Run(&out, loadCIB(t, f), caseOptions(t, raw)); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".xml") + ".out"
			if *rewrite {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("output differs from %s:\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing lines; enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		if shown++; shown == 10 {
			break
		}
	}
	return b.String()
}
