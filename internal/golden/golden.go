// Package golden is the one golden-file harness of the repository: whole
// files compared with what a test produced (File), and data-driven scripts
// whose commands are run one by one and whose recorded output follows each
// command (Script). Both are regenerated with the test flag -rewrite, to be
// used only once a diff is understood:
//
//	go test ./totem/srp -run TestScripts -rewrite
//
// # Script format
//
// A script is a sequence of blocks. A block is a command line, a line of
// "----", then the command's expected output up to the next blank line
// (an output that itself has blank lines is written between two "----"
// lines instead, as cockroachdb/datadriven does). Lines starting with '#'
// and blank lines between blocks are comments; they are kept on rewrite.
//
//	# a comment
//	send 1 agreed a1
//	----
//	ok
package golden

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Rewrite makes File and Script write what the test produced instead of
// comparing it.
var Rewrite = flag.Bool("rewrite", false, "rewrite golden files and script outputs (only once the diff is understood)")

// File compares got with the file at path, or writes it there with -rewrite.
func File(t testing.TB, path, got string) {
	t.Helper()
	if *Rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -rewrite to create it)", err)
	}
	if d := Diff(string(want), got); d != "" {
		t.Errorf("%s differs (rerun with -rewrite once the diff is understood):\n%s", path, d)
	}
}

// Diff describes the first difference between two texts with a few lines
// of context, or returns "" when they are equal.
func Diff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b || i >= len(w) || i >= len(g) {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q\ncontext (got):\n%s",
				i+1, a, b, strings.Join(g[lo:min(len(g), i+4)], "\n"))
		}
	}
	return ""
}

// Cmd is one command of a script.
type Cmd struct {
	Pos  string   // "file:line", for messages
	Line string   // the whole command line
	Name string   // its first word
	Args []string // the other words
	Want string   // the recorded output (without the final newline)
}

// Fatalf fails the test naming the command's position.
func (c *Cmd) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s: %s: %s", c.Pos, c.Line, fmt.Sprintf(format, args...))
}

// block is a script element: a command (with its output) or comment lines.
type block struct {
	cmd     *Cmd
	comment string
}

// ParseScript reads a script file.
func ParseScript(t testing.TB, path string) []*Cmd {
	t.Helper()
	var cmds []*Cmd
	for _, b := range parse(t, path) {
		if b.cmd != nil {
			cmds = append(cmds, b.cmd)
		}
	}
	return cmds
}

func parse(t testing.TB, path string) []block {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out = append(out, block{comment: l})
			continue
		}
		c := &Cmd{Pos: fmt.Sprintf("%s:%d", path, i+1), Line: l}
		f := strings.Fields(l)
		c.Name, c.Args = f[0], f[1:]
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s: a command must be followed by a ---- line", c.Pos)
		}
		i += 2
		var want []string
		if i < len(lines) && lines[i] == "----" {
			// Output with blank lines: up to the closing "----" pair.
			for i++; i < len(lines) && !(lines[i] == "----" && i+1 < len(lines) && lines[i+1] == "----"); i++ {
				want = append(want, lines[i])
			}
			i++ // the second "----"
		} else {
			for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
				want = append(want, lines[i])
			}
			i-- // the blank line is a comment block of its own
		}
		c.Want = strings.Join(want, "\n")
		out = append(out, block{cmd: c})
	}
	return out
}

// Script runs every command of the script at path through do, in order,
// and compares what do returns with the recorded output; with -rewrite it
// writes the outputs back into the script instead, keeping the comments.
// do may call t.Fatal (through Cmd.Fatalf) for a command it cannot run.
func Script(t *testing.T, path string, do func(c *Cmd) string) {
	t.Helper()
	blocks := parse(t, path)
	var b strings.Builder
	failed := false
	for _, bl := range blocks {
		if bl.cmd == nil {
			b.WriteString(bl.comment + "\n")
			continue
		}
		got := strings.TrimRight(do(bl.cmd), "\n")
		if got != bl.cmd.Want && !*Rewrite {
			failed = true
			t.Errorf("%s: %s\n%s", bl.cmd.Pos, bl.cmd.Line, Diff(bl.cmd.Want, got))
		}
		b.WriteString(bl.cmd.Line + "\n----\n")
		if strings.Contains(got, "\n\n") || strings.HasSuffix(got, "\n") {
			b.WriteString("----\n" + got + "\n----\n----\n")
		} else if got != "" {
			b.WriteString(got + "\n")
		}
	}
	if *Rewrite && !failed && !t.Failed() {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
