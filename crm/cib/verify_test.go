package cib_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ringmaster/crm/cib"
)

// crmVerify returns the path of Pacemaker's crm_verify (Debian's
// pacemaker-cli-utils). Without it the fidelity tests skip loudly, or fail
// when CI=true: CI installs it, so a missing binary there is a broken setup,
// not a reason to pass.
func crmVerify(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("crm_verify")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("crm_verify not found (apt-get install pacemaker-cli-utils); CI=true needs it")
		}
		t.Skip("SKIP: crm_verify not found (apt-get install pacemaker-cli-utils)")
	}
	return p
}

// verifyFile runs crm_verify on a CIB file and returns its combined output
// and whether it found the configuration valid.
func verifyFile(t *testing.T, bin, path string) (string, bool) {
	t.Helper()
	out, err := exec.Command(bin, "--xml-file", path).CombinedOutput()
	return string(out), err == nil
}

// TestWriteToVerifies is the round-trip fidelity check of import/export:
// every CIB that cib.Parse accepts (the shared Pacemaker cases and the
// scheduler's own test inputs) is written back with WriteTo, and the output
// must pass Pacemaker's crm_verify whenever the input does.
func TestWriteToVerifies(t *testing.T) {
	bin := crmVerify(t)
	shared := os.Getenv("RINGMASTER_PENGINE_CASES")
	if shared == "" {
		shared = "../../../shared/pengine/cases"
	}
	files, _ := filepath.Glob(filepath.Join(shared, "*.xml"))
	floor := 50
	if len(files) == 0 {
		msg := "*** SHARED PENGINE CASES NOT FOUND at " + shared + " (set RINGMASTER_PENGINE_CASES): only crm/pengine/testdata is checked ***"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
		floor = 15
	}
	// The clone tier next to the cases, where present: every clone CIB
	// the parser accepts must round-trip too.
	clones, _ := filepath.Glob(filepath.Join(filepath.Dir(shared), "clones", "*.xml"))
	files = append(files, clones...)
	local, _ := filepath.Glob("../pengine/testdata/*.xml")
	files = append(files, local...)
	dir := t.TempDir()
	checked := 0
	for _, in := range files {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cib.Parse(bytes.NewReader(data))
		if err != nil {
			continue // unsupported constructs: nothing is exported
		}
		if _, inOK := verifyFile(t, bin, in); !inOK {
			continue
		}
		var b bytes.Buffer
		if _, err := c.WriteTo(&b); err != nil {
			t.Fatalf("%s: WriteTo: %v", in, err)
		}
		out := filepath.Join(dir, strings.ReplaceAll(filepath.Base(filepath.Dir(in))+"-"+filepath.Base(in), "/", "_"))
		if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if msg, ok := verifyFile(t, bin, out); !ok {
			t.Errorf("%s: input passes crm_verify, WriteTo output does not:\n%s", in, msg)
		}
		// The written CIB parses again to the same text.
		c2, err := cib.Parse(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Errorf("%s: output does not re-parse: %v", in, err)
			continue
		}
		var b2 bytes.Buffer
		c2.WriteTo(&b2)
		if b2.String() != b.String() {
			t.Errorf("%s: WriteTo is not idempotent", in)
		}
		checked++
	}
	t.Logf("%d CIBs written back and verified", checked)
	if checked < floor {
		t.Errorf("only %d CIBs checked; the case directories are incomplete", checked)
	}
}
