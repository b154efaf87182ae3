package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runRingctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestCrmSimulate wires the flags through to the simulator: the four
// sections, -O and -G files, and the JSON form.
func TestCrmSimulate(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join("..", "..", "crm", "pengine", "testdata", "stickiness.xml")
	cibOut, graphOut := filepath.Join(dir, "out.xml"), filepath.Join(dir, "graph.xml")
	text, err := runRingctl(t, "crm", "simulate", "-x", in, "-S", "-O", cibOut, "-G", graphOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, want := range []string{"Current cluster status:", "Transition Summary:", "  * Move       move    ( node1 -> node2 )", "Executing Cluster Transition:", "Revised Cluster Status:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, f := range []string{cibOut, graphOut} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	// The saved CIB is a valid input again, now with nothing to do.
	text, err = runRingctl(t, "crm", "simulate", "-x", cibOut, "-S")
	if err != nil || !strings.Contains(text, "Transition Summary:\n\nExecuting Cluster Transition:\n") {
		t.Errorf("re-simulating the saved CIB: %v\n%s", err, text)
	}

	text, err = runRingctl(t, "--json", "crm", "simulate", "-x", in)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Transition []string `json:"transition"`
		Actions    []struct {
			Key  string `json:"key"`
			Node string `json:"node"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(doc.Transition) != 1 || len(doc.Actions) == 0 {
		t.Errorf("json: %+v", doc)
	}
}

func TestCrmSimulateErrors(t *testing.T) {
	if _, err := runRingctl(t, "crm", "simulate"); err == nil {
		t.Error("missing -x accepted")
	}
	in := filepath.Join("..", "..", "crm", "pengine", "testdata", "stickiness.xml")
	if _, err := runRingctl(t, "crm", "simulate", "-x", in, "-i", "bogus"); err == nil {
		t.Error("bad injection accepted")
	}
	// An unsupported construct is an error, never a silent answer.
	bad := filepath.Join(t.TempDir(), "bundle.xml")
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(raw), "<resources>", `<resources><bundle id="bn"><docker image="x"/></bundle>`, 1)
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runRingctl(t, "crm", "simulate", "-x", bad, "-S")
	var ee exitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "bundle") {
		t.Errorf("bundle: got %v", err)
	}
}
