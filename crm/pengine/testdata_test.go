package pengine_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"ringmaster/crm/simulate"
	"ringmaster/internal/golden"
)

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
// per feature, with the expected `simulate -S -s` output next to it
// (-rewrite regenerates them: only once a diff is understood, since they were
// checked against Pacemaker 2.1.5's crm_simulate when they were written).
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
			golden.File(t, strings.TrimSuffix(f, ".xml")+".out", out.String())
		})
	}
}
