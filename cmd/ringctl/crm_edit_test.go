package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyBase copies the cibedit golden base (three nodes, group web, db) to
// a temporary CIB file.
func copyBase(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "crm", "cibedit", "testdata", "base.xml"))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func fileHas(t *testing.T, path string, want ...string) {
	t.Helper()
	data, _ := os.ReadFile(path)
	for _, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("%s lacks %q", path, w)
		}
	}
}

func TestCrmApplyImportExport(t *testing.T) {
	t.Setenv(cibFileEnv, "")
	example := filepath.Join("..", "..", "examples", "resources.toml")
	out, err := runRingctl(t, "crm", "apply", "-f", example, "--dry-run")
	if err != nil || !strings.Contains(out, `<primitive id="vip" class="builtin" type="vip"`) || !strings.Contains(out, `epoch="1"`) {
		t.Fatalf("apply --dry-run: %v\n%s", err, out)
	}
	if _, err := runRingctl(t, "crm", "apply", "-f", example); err == nil || !strings.Contains(err.Error(), "connect to ringd") {
		t.Errorf("apply without ringd: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[resource]]\nid = \"a\"\nagent = \"lsb:x\"\n\n[[location]]\nresource = \"nope\"\nnode = \"n\"\nscore = 1\n"), 0o644)
	if _, err := runRingctl(t, "crm", "apply", "-f", bad, "--dry-run"); err == nil || !strings.Contains(err.Error(), bad+":6: location[0].resource:") {
		t.Errorf("bad file: %v", err)
	}

	// Apply onto a CIB file keeps its status and bumps the epoch.
	f := copyBase(t)
	if out, err := runRingctl(t, "crm", "apply", "-f", example, "--cib", f); err != nil {
		t.Fatalf("apply --cib: %v\n%s", err, out)
	}
	fileHas(t, f, `epoch="6"`, `<node_state id="1" uname="node1"`, `<clone id="db-clone">`)

	// A bad file changes nothing; neither does an unsupported CIB.
	before, _ := os.ReadFile(f)
	if _, err := runRingctl(t, "crm", "apply", "-f", bad, "--cib", f); err == nil {
		t.Error("bad file applied")
	}
	bundle := filepath.Join(t.TempDir(), "bundle.xml")
	os.WriteFile(bundle, []byte(strings.Replace(string(before), "<resources>", `<resources><bundle id="bu"/>`, 1)), 0o644)
	if _, err := runRingctl(t, "crm", "import", bundle, "--cib", f); err == nil || !strings.Contains(err.Error(), `<bundle id="bu">`) {
		t.Errorf("import of a bundle: %v", err)
	}
	if after, _ := os.ReadFile(f); string(after) != string(before) {
		t.Error("a refused apply or import changed the CIB file")
	}
	if _, err := runRingctl(t, "crm", "simulate", "--cib", f); err == nil {
		t.Error("simulate accepted --cib")
	}

	// import --dry-run of a Pacemaker CIB, then export as XML and TOML.
	in := filepath.Join("..", "..", "crm", "pengine", "testdata", "group.xml")
	if out, err := runRingctl(t, "crm", "import", in, "--dry-run"); err != nil || !strings.Contains(out, "<group") {
		t.Errorf("import --dry-run: %v\n%s", err, out)
	}
	if _, err := runRingctl(t, "crm", "import", in); err == nil || !strings.Contains(err.Error(), "connect to ringd") {
		t.Errorf("import without ringd: %v", err)
	}
	if _, err := runRingctl(t, "crm", "export"); err == nil || !strings.Contains(err.Error(), "connect to ringd") {
		t.Errorf("export without ringd: %v", err)
	}
	out, err = runRingctl(t, "crm", "export", "--toml", "--cib", f)
	if err != nil || !strings.Contains(out, "[[resource]]\nid = \"fence-all\"\nagent = \"stonith:fence_dummy\"") {
		t.Errorf("export --toml: %v\n%s", err, out)
	}
	out, err = runRingctl(t, "crm", "export", "--pacemaker", "--cib", f)
	if err != nil || !strings.Contains(out, `<primitive id="vip" class="ocf" type="vip" description="the service address" provider="ringmaster">`) || strings.Contains(out, "builtin") {
		t.Errorf("export --pacemaker: %v\n%s", err, out)
	}
	if verify, err := exec.LookPath("crm_verify"); err == nil {
		px := filepath.Join(t.TempDir(), "p.xml")
		os.WriteFile(px, []byte(out), 0o644)
		// Only errors count: a configuration without node history draws
		// warnings (unclean nodes with stonith enabled).
		if msg, err := exec.Command(verify, "--xml-file", px).CombinedOutput(); err != nil && !strings.Contains(string(msg), "Warnings found during check") {
			t.Errorf("crm_verify rejects export --pacemaker: %v\n%s", err, msg)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("crm_verify not found; CI=true needs it (pacemaker-cli-utils)")
	}
	if _, err := runRingctl(t, "crm", "frobnicate"); err == nil {
		t.Error("unknown crm subcommand accepted")
	}
}

func TestCrmResourceNodeCommands(t *testing.T) {
	t.Setenv(cibFileEnv, "")
	f := copyBase(t)
	steps := []struct {
		args []string
		has  []string
		err  string
	}{
		{[]string{"resource", "move", "web", "node2"}, []string{`<rsc_location id="cli-prefer-web" rsc="web" role="Started" node="node2" score="INFINITY"/>`}, ""},
		{[]string{"resource", "ban", "db", "node3"}, []string{`id="cli-ban-db-on-node3"`}, ""},
		{[]string{"resource", "clear", "web"}, nil, ""},
		{[]string{"resource", "stop", "db"}, []string{`name="target-role" value="Stopped"`}, ""},
		{[]string{"resource", "start", "db"}, []string{`name="target-role" value="Started"`}, ""},
		{[]string{"resource", "cleanup", "db"}, nil, ""},
		{[]string{"node", "standby", "node3"}, []string{`<nvpair id="nodes-3-standby" name="standby" value="on"/>`}, ""},
		{[]string{"node", "online", "node3"}, []string{`name="standby" value="off"`}, ""},
		{[]string{"resource", "move", "nope", "node1"}, nil, "no such resource"},
		{[]string{"resource", "restart", "db"}, nil, "needs a running ringd"},
		{[]string{"attribute", "-N", "node2", "-n", "rack", "-v", "b"}, []string{`<nvpair id="nodes-2-rack" name="rack" value="b"/>`}, ""},
	}
	for _, s := range steps {
		out, err := runRingctl(t, append(append([]string{"crm"}, s.args...), "--cib", f)...)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Errorf("%v: error %v, want %q", s.args, err, s.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		fileHas(t, f, s.has...)
	}
	data, _ := os.ReadFile(f)
	if strings.Contains(string(data), "cli-prefer-web") {
		t.Error("clear left cli-prefer-web")
	}
	// Without --cib the edits need ringd.
	if _, err := runRingctl(t, "crm", "resource", "stop", "db"); err == nil || !strings.Contains(err.Error(), "connect to ringd") {
		t.Errorf("stop without ringd: %v", err)
	}
}

// TestAttrTools runs the invocations Debian's OCF agents make
// (ocf:pacemaker:Stateful, ocf:heartbeat:*) against a CIB file.
func TestAttrTools(t *testing.T) {
	f := copyBase(t)
	env := map[string]string{"OCF_RESOURCE_INSTANCE": "db", "OCF_RESKEY_CRM_meta_on_node": "node2"}
	ae := attrEnv{getenv: func(k string) string { return env[k] }, cib: f}
	steps := []struct {
		tool string
		args string
		code int
		out  string
	}{
		// Stateful: crm_attribute --promotion -v N / -D.
		{"crm_attribute", "--promotion -v 5", 0, ""},
		{"crm_attribute", "--promotion -G -q", 0, "5\n"},
		{"crm_attribute", "-N node2 -n master-db -l reboot -G", 0, "scope=status  name=master-db value=5\n"},
		{"crm_attribute", "--promotion -D", 0, ""},
		{"crm_attribute", "--promotion -G -q", exitNoSuch, ""},
		{"crm_attribute", "--promotion=other -v 3", 0, ""},
		// crm_master (older agents): -l reboot -v N, -Q -v, -D, -G --quiet.
		{"crm_master", "-l reboot -v 100", 0, ""},
		{"crm_master", "-Q -v 100 -l reboot", 0, ""},
		{"crm_master", "-l reboot -G --quiet", 0, "100\n"},
		{"crm_master", "-l reboot -D", 0, ""},
		{"crm_master", "-r other -l reboot -G -q", 0, "3\n"},
		// heartbeat agents: node attributes, forever and reboot.
		{"crm_attribute", "-N node1 -l reboot --name rabbit-master --update true", 0, ""},
		{"crm_attribute", "-N node1 -l reboot --name rabbit-master --query -q", 0, "true\n"},
		{"crm_attribute", "-N node1 -l reboot --name rabbit-master --delete", 0, ""},
		{"crm_attribute", "--lifetime=reboot --name=pending --node=node3 --update=1", 0, ""},
		{"crm_attribute", "-l forever --node=node3 -n tunnel-port -v 4789", 0, ""},
		{"crm_attribute", "--node node3 -l forever --name tunnel-port --query -q", 0, "4789\n"},
		{"crm_attribute", "--type nodes --node node3 -n tunnel-port -G -q", 0, "4789\n"},
		{"crm_attribute", "-t nodes --node node3 -z -n cpu -v 8", 0, ""},
		{"crm_attribute", "--quiet -t nodes --node node3 -z -n cpu", 0, "8\n"},
		{"crm_attribute", "-n runs_ers_X -v 1 -l reboot", 0, ""},
		{"crm_attribute", "-l forever -n runs_ers_X -G --quiet", exitNoSuch, ""},
		{"crm_attribute", "--type crm_config --name stonith-enabled --query --quiet", 0, "false\n"},
		{"crm_attribute", "-t crm_config -n nope -G -q -d fallback", 0, "fallback\n"},
		{"crm_attribute", "-N node9 -n x -v 1", exitNoSuch, ""},
		{"crm_attribute", "-t tickets -n x -G", exitUsage, ""},
		{"crm_attribute", "--bogus", exitUsage, ""},
		// attrd_updater (ping, SAPHana, ...).
		{"attrd_updater", "-n pingd -U 100 -d 5s", 0, ""},
		{"attrd_updater", "-n pingd -v 200", 0, ""},
		{"attrd_updater", "--query -n pingd -N node2", 0, "name=\"pingd\" host=\"node2\" value=\"200\"\n"},
		{"attrd_updater", "-D -n pingd", 0, ""},
		{"attrd_updater", "-Q -n pingd", exitNoSuch, ""},
		{"attrd_updater", "-n pingd", exitUsage, ""},
		{"attrd_updater", "-n pingd -Y -d 10s", 0, ""},
	}
	for _, s := range steps {
		var out, errb bytes.Buffer
		code := runAttrTool(s.tool, strings.Fields(s.args), ae, &out, &errb)
		if code != s.code || out.String() != s.out {
			t.Errorf("%s %s: exit %d, out %q (stderr %q); want %d, %q", s.tool, s.args, code, out.String(), errb.String(), s.code, s.out)
		}
	}
	fileHas(t, f, `<nvpair id="status-2-master-other" name="master-other" value="3"/>`, `<nvpair id="nodes-3-tunnel-port" name="tunnel-port" value="4789"/>`,
		`<nvpair id="status-3-pending" name="pending" value="1"/>`, `<nvpair id="nodes-3-utilization-cpu" name="cpu" value="8"/>`)
	// Without a CIB file: not connected.
	var out, errb bytes.Buffer
	if code := runAttrTool("crm_attribute", []string{"-n", "x", "-G"}, attrEnv{getenv: func(string) string { return "" }}, &out, &errb); code != exitNotConnected {
		t.Errorf("without a CIB: exit %d", code)
	}
}

// ringctl's global flags and --cib work with `crm attribute`, whose own
// flags are crm_attribute's.
func TestCrmAttributeGlobalFlags(t *testing.T) {
	f := copyBase(t)
	if _, err := runRingctl(t, "--socket", "/nonexistent.sock", "crm", "attribute", "--cib", f, "-N", "node2", "-n", "rack", "-v", "z"); err != nil {
		t.Fatalf("crm attribute with --socket before and --cib after: %v", err)
	}
	fileHas(t, f, `name="rack" value="z"`)
	if _, err := runRingctl(t, "crm", "attribute", "-n", "x", "-G", "--socket"); err == nil || !strings.Contains(err.Error(), "--socket needs a value") {
		t.Fatalf("a --socket without a value: %v", err)
	}
}

// TestCrmWaitFlagValue: --wait takes its value with "=" (--wait=5m);
// "--wait 5m" made 5m the command's next argument, so `crm resource clear
// db --wait 5m` cleared db's constraints on a node named "5m" (none: the
// ban stayed), waited 1 minute, and exited 0. It is refused instead.
func TestCrmWaitFlagValue(t *testing.T) {
	t.Setenv(cibFileEnv, "")
	f := copyBase(t)
	if out, err := runRingctl(t, "crm", "resource", "ban", "db", "node3", "--cib", f); err != nil {
		t.Fatalf("ban: %v\n%s", err, out)
	}
	_, err := runRingctl(t, "crm", "resource", "clear", "db", "--wait", "5m", "--cib", f)
	if err == nil || !strings.Contains(err.Error(), "--wait=5m") {
		t.Errorf("clear db --wait 5m: error %v, want one that says --wait=5m", err)
	}
	fileHas(t, f, `id="cli-ban-db-on-node3"`)
	// A CIB file has no cluster to wait for: refused before the change.
	if _, err := runRingctl(t, "crm", "resource", "clear", "db", "node3", "--wait", "--cib", f); err == nil || !strings.Contains(err.Error(), "running cluster") {
		t.Errorf("clear --wait on a CIB file: %v, want a refusal", err)
	}
	fileHas(t, f, `id="cli-ban-db-on-node3"`)
	for _, args := range [][]string{
		{"resource", "clear", "db", "node3", "--wait=0"},
		{"resource", "ban", "db", "node3", "--wait=0"},
		{"node", "standby", "node3", "--wait=0"},
	} {
		if out, err := runRingctl(t, append(append([]string{"crm"}, args...), "--cib", f)...); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}
