package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringmaster/stonithd/vsockfence"
)

const stonithCIB = `<cib><configuration><crm_config/><nodes/><resources>
  <primitive id="pdu" class="stonith" type="fence_apc">
    <instance_attributes id="p-ia">
      <nvpair id="p1" name="ip" value="10.0.0.9"/>
      <nvpair id="p2" name="pcmk_host_map" value="n1:1;n2:2"/>
    </instance_attributes>
  </primitive>
  <primitive id="vm" class="builtin" type="fence-vsock">
    <instance_attributes id="v-ia">
      <nvpair id="v1" name="key_file" value="/etc/ringmaster/fence-vsock.key"/>
    </instance_attributes>
  </primitive>
</resources><constraints/>
<fencing-topology>
  <fencing-level id="l1" target="n1" index="1" devices="pdu"/>
  <fencing-level id="l2" target="n1" index="2" devices="vm"/>
</fencing-topology>
</configuration><status/></cib>`

func TestStonithListAndLevels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(path, []byte(stonithCIB), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runRingctl(t, "--json", "stonith", "list", "--cib", path, "--agent-dir", t.TempDir())
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	var devs []struct {
		ID        string   `json:"id"`
		HostCheck string   `json:"host_check"`
		Hosts     []string `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(devs) != 2 || devs[0].ID != "pdu" || devs[0].HostCheck != "static-list" || strings.Join(devs[0].Hosts, ",") != "n1,n2" {
		t.Errorf("devices %+v", devs)
	}
	out, err = runRingctl(t, "stonith", "levels", "--cib", path)
	if err != nil || !strings.Contains(out, "Target: n1\n  Level 1 - pdu\n") || !strings.Contains(out, "Level 2 - vm") {
		t.Errorf("levels: %v\n%s", err, out)
	}
	if _, err := runRingctl(t, "stonith", "list"); err == nil || !strings.Contains(err.Error(), "--cib") {
		t.Errorf("list without --cib: %v", err)
	}
	if _, err := runRingctl(t, "stonith", "bogus"); err == nil {
		t.Error("stonith bogus: no error")
	}
}

// TestFenceHostOverUnixSocket runs `ringctl fence-host` on a Unix socket
// (this machine has no vsock host) and fences a VM through it.
func TestFenceHostOverUnixSocket(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fence.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"fence-host", "--listen-unix", sock, "--key-file", keyFile, "--exec", "touch " + dir + "/{vm}.{action}", "--allow", "^vm-"})
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(srvCtx) }()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("fence-host exited: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatal("fence-host did not listen")
		case <-time.After(10 * time.Millisecond):
		}
	}
	c := &vsockfence.Client{Key: key, Requester: "n1", Dial: vsockfence.UnixDialer(sock)}
	resp, err := c.Do(ctx, vsockfence.ActionOff, "vm-n2")
	if err != nil || resp.Status != vsockfence.StatusOK {
		t.Fatalf("off: %+v %v", resp, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vm-n2.off")); err != nil {
		t.Errorf("the host command did not run: %v", err)
	}
	if resp, err := c.Do(ctx, vsockfence.ActionReboot, "db-1"); err != nil || resp.Status != vsockfence.StatusDenied {
		t.Errorf("--allow: %+v %v", resp, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("fence-host: %v", err)
	}
	if !strings.Contains(out.String(), "off of \"vm-n2\" for \"n1\": ok") {
		t.Errorf("log:\n%s", out.String())
	}
}
