package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringmaster/config"
)

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
		_, err := runRingctl(t, args...)
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
	out, err := runRingctl(t, "version")
	if err != nil || !strings.HasPrefix(out, "ringctl ") {
		t.Errorf("version: %q, %v", out, err)
	}
	out, err = runRingctl(t, "--json", "version")
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

func TestImportCorosync(t *testing.T) {
	out, err := runRingctl(t, "config", "import-corosync", "../../config/corosyncconf/testdata/pcs.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`cluster_name = "mycluster"`, `ring0_addr = "10.0.0.12"`, "two_node = true", "warning: pcs.conf"} {
		if !strings.Contains(out, want) && !(strings.HasPrefix(want, "warning") && strings.Contains(out, "warning: ../../config")) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	dst := t.TempDir() + "/corosync.toml"
	if _, err := runRingctl(t, "config", "import-corosync", "-o", dst, "../../config/corosyncconf/testdata/udp.conf"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dst)
	if err != nil {
		t.Fatalf("written file does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil || cfg.Totem.ClusterName != "legacy" || len(cfg.Nodes) != 3 {
		t.Errorf("written file: %v, %+v", err, cfg.Totem)
	}
	if _, err := runRingctl(t, "config", "import-corosync", "/nonexistent/corosync.conf"); err == nil {
		t.Error("a missing file is not an error")
	}
}

func TestConfigCheckJSON(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.toml"
	bad := dir + "/bad.toml"
	base := "[totem]\ncluster_name = \"t\"\ncrypto_cipher = \"none\"\n[[node]]\nnodeid = 1\nname = \"n1\"\nring0_addr = \"127.0.0.1\"\n"
	if err := os.WriteFile(good, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(base+"[totem]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runRingctl(t, "--json", "config", "check", good)
	var got struct {
		Valid     bool             `json:"valid"`
		Errors    []string         `json:"errors"`
		Effective map[string]int64 `json:"effective"`
	}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || !got.Valid || got.Effective["token"] == 0 {
		t.Errorf("valid file: %v %s", err, out)
	}
	out, err = runRingctl(t, "--json", "config", "check", bad)
	got.Valid, got.Errors = true, nil
	if err == nil || json.Unmarshal([]byte(out), &got) != nil || got.Valid || len(got.Errors) == 0 || !strings.Contains(got.Errors[0], "bad.toml") {
		t.Errorf("invalid file: %v %s", err, out)
	}
}

// TestManPages: the hidden `man` command writes a page per command of the
// tree (make man), and none for itself or cobra's hidden helpers.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	if out, err := runRingctl(t, "man", dir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, page := range []string{"ringctl.8", "ringctl-status.8", "ringctl-crm-status.8", "ringctl-agent-meta.8", "ringctl-cmap-get.8", "ringctl-completion-bash.8"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		if !strings.Contains(string(b), ".TH \"RINGCTL\" \"8\"") || !strings.Contains(string(b), ".SH SYNOPSIS") {
			t.Errorf("%s is not a man page:\n%.300s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ringctl-man.8")); err == nil {
		t.Error("the hidden man command has a page")
	}
	if _, err := runRingctl(t, "man"); err == nil {
		t.Error("man without DIR: no error")
	}
}

// TestJSONEverywhere: commands that print in a format of their own refuse
// --json instead of ignoring it; keygen reports in JSON.
func TestJSONEverywhere(t *testing.T) {
	dir := t.TempDir()
	cibFile := filepath.Join("..", "..", "crm", "pengine", "testdata", "stickiness.xml")
	toml := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(toml, []byte("[[resource]]\nid = \"d\"\nagent = \"builtin:dummy\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--json", "crm", "export", "--cib", cibFile},
		{"--json", "crm", "apply", "-f", toml, "--dry-run"},
		{"--json", "crm", "import", cibFile, "--dry-run"},
	} {
		out, err := runRingctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--json is not supported") {
			t.Errorf("ringctl %v: %v\n%.200s", args, err, out)
		}
	}
	if out, err := runRingctl(t, "crm", "export", "--cib", cibFile); err != nil || !strings.Contains(out, "<cib") {
		t.Errorf("crm export without --json: %v\n%.200s", err, out)
	}

	key := filepath.Join(dir, "authkey")
	out, err := runRingctl(t, "--json", "keygen", "-o", key)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		File string `json:"file"`
		Bits int    `json:"bits"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.File != key || got.Bits != 256 {
		t.Errorf("keygen --json: %v %+v\n%s", err, got, out)
	}
}
