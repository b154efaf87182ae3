package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for ringctl installed as
// crm_attribute, crm_master or attrd_updater: linked under one of those
// names, it runs the tool instead of the tests.
func TestMain(m *testing.M) {
	if tool := filepath.Base(os.Args[0]); attrToolNames[tool] {
		os.Exit(runAttrTool(tool, os.Args[1:], attrEnv{getenv: os.Getenv, cib: os.Getenv(cibFileEnv), socket: envOr("RINGMASTER_SOCKET", defaultSocket)}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestStatefulAgent runs Debian's ocf:pacemaker:Stateful (package
// pacemaker-resource-agents) unchanged, with HA_SBIN_DIR pointing at
// ringctl linked as crm_attribute: its promotion score lands in the CIB's
// transient attributes and goes away when it stops.
func TestStatefulAgent(t *testing.T) {
	const agent = "/usr/lib/ocf/resource.d/pacemaker/Stateful"
	if _, err := os.Stat(agent); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (apt-get install pacemaker-resource-agents); CI=true needs it", agent)
		}
		t.Skipf("SKIP: %s missing (apt-get install pacemaker-resource-agents)", agent)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sbin := t.TempDir()
	for tool := range attrToolNames {
		if err := os.Symlink(self, filepath.Join(sbin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	f := copyBase(t)
	env := append(os.Environ(), "OCF_ROOT=/usr/lib/ocf", "HA_SBIN_DIR="+sbin, "OCF_RESOURCE_INSTANCE=db",
		"OCF_RESKEY_CRM_meta_on_node=node2", "OCF_RESKEY_state="+filepath.Join(sbin, "state"), cibFileEnv+"="+f)
	for _, step := range []struct {
		action string
		rc     int
		score  string // master-db on node2 afterwards, "" when absent
	}{
		{"start", 0, "5"}, {"promote", 0, "10"}, {"monitor", 8, "10"}, {"demote", 0, "5"}, {"stop", 0, ""},
	} {
		cmd := exec.Command(agent, step.action)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		rc := 0
		if ee, ok := err.(*exec.ExitError); ok {
			rc = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if rc != step.rc {
			t.Errorf("Stateful %s: rc %d, want %d\n%s", step.action, rc, step.rc, out)
		}
		data, _ := os.ReadFile(f)
		want := `<nvpair id="status-2-master-db" name="master-db" value="` + step.score + `"/>`
		if got := strings.Contains(string(data), `name="master-db"`); got != (step.score != "") || step.score != "" && !strings.Contains(string(data), want) {
			t.Errorf("after %s: CIB lacks %s (or still has master-db)\n%s", step.action, want, data)
		}
	}
}
