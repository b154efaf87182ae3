package main

import (
	"bytes"
	"strings"
	"testing"
)

// run executes ringctl in-process with args and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestUnknownCommandsFail: a typo anywhere must exit non-zero with an error
// naming the command, never print the help and exit 0.
func TestUnknownCommandsFail(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"cpg", "bogus"},
		{"lvs", "bogus"},
		{"crm", "bogus"},
		{"quorum", "bogus"},
		{"cmap", "bogus"},
		{"agent", "bogus"},
		{"config", "bogus"},
		{"crm"},
		{"cpg", "--bogus"},
		{"status", "extra"},
	} {
		_, err := run(t, args...)
		if err == nil {
			t.Errorf("ringctl %s: no error", strings.Join(args, " "))
			continue
		}
		if args[0] != "bogus" && !strings.Contains(err.Error(), args[0]) && !strings.Contains(err.Error(), "flag") {
			t.Errorf("ringctl %s: error %q does not name the command", strings.Join(args, " "), err)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "ringctl ") {
		t.Errorf("version: %q, %v", out, err)
	}
	out, err = run(t, "--json", "version")
	if err != nil || !strings.Contains(out, `"version"`) {
		t.Errorf("--json version: %q, %v", out, err)
	}
}

func TestJSONDoesNotEscapeArrows(t *testing.T) {
	var b bytes.Buffer
	if err := printJSON(&b, map[string]string{"move": "n1 -> n2"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "n1 -> n2") {
		t.Errorf("printJSON escaped the arrow: %s", b.String())
	}
}
