package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const script = `# intro

echo a b
----
a b

echo
----

multi x
----
----
x

x
----
----
`

func TestScriptRunsEveryCommandWithItsRecordedOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var ran []string
	Script(t, path, func(c *Cmd) string {
		ran = append(ran, c.Name)
		switch c.Name {
		case "echo":
			return strings.Join(c.Args, " ")
		case "multi":
			return c.Args[0] + "\n\n" + c.Args[0]
		}
		c.Fatalf(t, "unknown command")
		return ""
	})
	if strings.Join(ran, ",") != "echo,echo,multi" {
		t.Errorf("ran %v", ran)
	}
}

func TestScriptRewriteKeepsCommentsAndRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.txt")
	stale := strings.Replace(script, "a b\n\necho", "stale\n\necho", 1)
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	*Rewrite = true
	defer func() { *Rewrite = false }()
	Script(t, path, func(c *Cmd) string {
		if c.Name == "multi" {
			return "x\n\nx"
		}
		return strings.Join(c.Args, " ")
	})
	got, _ := os.ReadFile(path)
	if string(got) != script {
		t.Errorf("rewritten script:\n%s\nwant:\n%s", got, script)
	}
}

func TestDiff(t *testing.T) {
	if d := Diff("a\nb", "a\nb"); d != "" {
		t.Errorf("equal texts: %q", d)
	}
	if d := Diff("a\nb", "a\nc"); !strings.Contains(d, "line 2") {
		t.Errorf("diff %q does not name line 2", d)
	}
	if d := Diff("a", "a\n"); d == "" {
		t.Error("a trailing newline is a difference")
	}
}
