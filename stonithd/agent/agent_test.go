package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/stonithd"
	"ringmaster/stonithd/vsockfence"
)

// requireFenceDummy skips without Debian's fence_dummy, except in CI
// (CI=true), where its absence is a failure: .ci/run installs
// fence-agents, and a fencing test that silently skips proves nothing.
func requireFenceDummy(t *testing.T) *Registry {
	t.Helper()
	r := New(Config{Node: "n1"})
	if _, err := r.path("fence_dummy"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fence_dummy is required in CI (apt-get install fence-agents): %v", err)
		}
		t.Skipf("fence_dummy not installed: %v", err)
	}
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestFenceDummyMetadata(t *testing.T) {
	r := requireFenceDummy(t)
	md, err := r.Metadata(ctx(t), "fence_dummy")
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "fence_dummy" || md.Param("status_file") == nil || !md.HasAction("reboot") || md.HasAction("list") {
		t.Errorf("meta-data %+v", md)
	}
	if md.DefaultHostArgument() != "none" {
		t.Errorf("host argument %q", md.DefaultHostArgument())
	}
	list, err := r.List()
	if err != nil || !contains(list, "fence_dummy") || !contains(list, stonithd.BuiltinVsock) {
		t.Errorf("List = %v, %v", list, err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// dummyCIB has two fence_dummy devices: "broken" (type=fail, highest
// priority) and "dummy", which writes its power state to a file.
func dummyCIB(dir string) string {
	return `<cib><configuration><crm_config/><nodes/><resources>
  <primitive id="broken" class="stonith" type="fence_dummy">
    <instance_attributes id="b-ia">
      <nvpair id="b1" name="type" value="fail"/>
      <nvpair id="b2" name="status_file" value="` + dir + `/broken"/>
      <nvpair id="b3" name="pcmk_host_list" value="n3"/>
      <nvpair id="b4" name="pcmk_reboot_retries" value="0"/>
      <nvpair id="b6" name="power_timeout" value="1"/>
    </instance_attributes>
    <meta_attributes id="b-ma"><nvpair id="b5" name="priority" value="10"/></meta_attributes>
  </primitive>
  <primitive id="dummy" class="stonith" type="fence_dummy">
    <instance_attributes id="d-ia">
      <nvpair id="d1" name="status_file" value="` + dir + `/power"/>
    </instance_attributes>
  </primitive>
</resources><constraints/></configuration><status/></cib>`
}

// TestFenceDummyEndToEnd fences through the driver with Debian's
// fence_dummy: device built from a CIB, meta-data from the agent, the
// status host check (fence_dummy has no list), a failing device first.
func TestFenceDummyEndToEnd(t *testing.T) {
	r := requireFenceDummy(t)
	dir := t.TempDir()
	c, err := cib.Parse(strings.NewReader(dummyCIB(dir)))
	if err != nil {
		t.Fatal(err)
	}
	devs, errs := stonithd.DevicesFromCIB(c, r.MetadataFunc(ctx(t)), stonithd.DeviceOptions{Timeout: 30 * time.Second})
	if len(errs) > 0 || len(devs) != 2 {
		t.Fatalf("devices %v errors %v", devs, errs)
	}
	if devs[1].HostCheck != stonithd.HostCheckStatus || devs[1].HostArgument != "none" {
		t.Errorf("dummy: check %s argument %s", devs[1].HostCheck, devs[1].HostArgument)
	}
	published := make(chan stonithd.Entry, 10)
	d := stonithd.NewDriver(stonithd.DriverConfig{
		Fencer:   stonithd.Config{Node: "n1"},
		Executor: r,
		OnHistory: func(es []stonithd.Entry) {
			for _, e := range es {
				published <- e
			}
		},
	})
	defer d.Close()
	d.SetDevices(devs)

	// fence_dummy reads a missing file as off, and off on an off plug
	// changes nothing: start powered on.
	if err := os.WriteFile(filepath.Join(dir, "power"), []byte("on"), 0o644); err != nil {
		t.Fatal(err)
	}
	power := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "power"))
		return string(b)
	}
	out, err := d.Fence(ctx(t), stonithd.Request{Target: "n2", Action: stonithd.ActionOff})
	if err != nil || out.Entry.Device != "dummy" || power() != "off" {
		t.Fatalf("off: %v %+v power=%q", err, out.Entry, power())
	}
	res, err := d.Query(ctx(t), "dummy", stonithd.AgentStatus, "n2")
	if err != nil || res.RC != RCOff {
		t.Errorf("status after off: %+v %v", res, err)
	}
	if _, err := d.Fence(ctx(t), stonithd.Request{Target: "n2", Action: stonithd.ActionOn}); err != nil || power() != "on" {
		t.Fatalf("on: %v power=%q", err, power())
	}
	// n3: the broken device (higher priority) fails, dummy fences.
	out, err = d.Fence(ctx(t), stonithd.Request{Target: "n3", Action: stonithd.ActionReboot, Client: "test"})
	if err != nil || out.Entry.Device != "dummy" || !strings.Contains(out.Entry.Reason, "broken reboot: rc=1") {
		t.Fatalf("reboot: %v %+v", err, out.Entry)
	}
	if res, _ := d.Query(ctx(t), "dummy", stonithd.AgentMonitor, ""); res.RC != 0 {
		t.Errorf("monitor: %+v", res)
	}
	h := d.History()
	if len(h) != 3 {
		t.Fatalf("history %v", h)
	}
	for i := 0; i < 3; i++ {
		select {
		case <-published:
		case <-ctx(t).Done():
			t.Fatalf("%d entries published", i)
		}
	}
	for _, e := range h {
		if e.Result != stonithd.ResultSuccess || e.Time.IsZero() || e.Executioner != "n1" {
			t.Errorf("entry %+v", e)
		}
	}
}

func TestEncodeArgs(t *testing.T) {
	b, err := EncodeArgs(map[string]string{"port": "3", "action": "off", "ip": "10.0.0.1", "nodename": "n2"})
	if err != nil || string(b) != "action=off\nip=10.0.0.1\nnodename=n2\nport=3\n" {
		t.Errorf("%q %v", b, err)
	}
	for _, bad := range []map[string]string{
		{"password": "x\naction=on"}, {"a\nb": "1"}, {"a=b": "1"}, {"": "1"}, {"p": "nul\x00"},
	} {
		if _, err := EncodeArgs(bad); !errors.Is(err, ErrBadParam) {
			t.Errorf("EncodeArgs(%q) = %v", bad, err)
		}
	}
	r := New(Config{})
	if res := r.Exec(ctx(t), stonithd.Command{Agent: "fence_../../bin/sh"}); res.Err == "" {
		t.Error("path in agent name accepted")
	}
	if res := r.Exec(ctx(t), stonithd.Command{Agent: "fence_does_not_exist"}); !strings.Contains(res.Err, "not installed") {
		t.Errorf("missing agent: %+v", res)
	}
}

func scriptDevice(t *testing.T, command string, extra map[string]string) *stonithd.Device {
	t.Helper()
	p := map[string]string{"command": command}
	for k, v := range extra {
		p[k] = v
	}
	d, err := stonithd.NewDeviceFromParams("script", stonithd.BuiltinScript, p, nil, scriptMetadata(), stonithd.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFenceScript(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	cmd := `{ echo "args=$1 $2 env=$FENCE_ACTION $FENCE_TARGET $FENCE_PORT $FENCE_DEVICE"; cat; } >>` + log + `; [ "$1" != status ] || exit 2`
	dev := scriptDevice(t, cmd, map[string]string{"pcmk_host_map": "n2:outlet-7", "secret": "s3"})
	r := New(Config{})
	res := stonithd.RunQuery(ctx(t), r, dev, "reboot", "n2")
	if !res.OK() {
		t.Fatalf("reboot: %+v", res)
	}
	if res := stonithd.RunQuery(ctx(t), r, dev, "status", "n2"); res.RC != RCOff {
		t.Errorf("status: %+v", res)
	}
	b, _ := os.ReadFile(log)
	want := "args=reboot n2 env=reboot n2 outlet-7 script\naction=reboot\nnodename=n2\nport=outlet-7\nsecret=s3\n" +
		"args=status n2 env=status n2 outlet-7 script\naction=status\nnodename=n2\nport=outlet-7\nsecret=s3\n"
	if string(b) != want {
		t.Errorf("script saw:\n%s\nwant:\n%s", b, want)
	}
	if res := stonithd.RunQuery(ctx(t), r, scriptDevice(t, "echo Failed: no power >&2; exit 1", nil), "off", "n2"); res.RC != RCError || res.Output != "Failed: no power" {
		t.Errorf("failing script: %+v", res)
	}
}

// TestScriptTimeoutKillsProcessGroup: on timeout the agent and what it
// forked are killed, and the result says timed out.
func TestScriptTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	dev := scriptDevice(t, "sleep 60 & echo $! >"+pidFile+"; wait", map[string]string{"pcmk_off_timeout": "300ms"})
	res := stonithd.RunQuery(ctx(t), New(Config{}), dev, "off", "n2")
	if !res.TimedOut {
		t.Fatalf("result %+v, want timed out", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A killed child may linger as a zombie until reaped by init.
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out agent still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFenceVsockOverUnixSocket runs builtin:fence-vsock against the
// host responder, over a Unix socket standing in for AF_VSOCK.
func TestFenceVsockOverUnixSocket(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := vsockfence.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "host.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan string, 10)
	srv := &vsockfence.Server{Key: key, Power: func(_ context.Context, a vsockfence.Action, vm string) (vsockfence.Status, string) {
		calls <- a.String() + " " + vm
		return vsockfence.StatusOK, "power-cycled"
	}}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = srv.Serve(sctx, ln) }()

	var dialed []uint32
	r := New(Config{Node: "n1", VsockDial: func(cid, port uint32) vsockfence.Dialer {
		dialed = append(dialed, cid, port)
		return vsockfence.UnixDialer(sock)
	}})
	md, err := r.Metadata(ctx(t), stonithd.BuiltinVsock)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := stonithd.NewDeviceFromParams("vsock", stonithd.BuiltinVsock, map[string]string{
		"key_file": keyFile, "vsock_port": "7000", "pcmk_host_map": "n2:vm-n2;n3:vm-n3",
	}, nil, md, stonithd.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := stonithd.NewDriver(stonithd.DriverConfig{Fencer: stonithd.Config{Node: "n1"}, Executor: r})
	defer d.Close()
	d.SetDevices([]*stonithd.Device{dev})
	out, err := d.Fence(ctx(t), stonithd.Request{Target: "n2", Action: stonithd.ActionReboot})
	if err != nil || out.Entry.Device != "vsock" {
		t.Fatalf("fence: %v %+v", err, out.Entry)
	}
	if got := <-calls; got != "reboot vm-n2" {
		t.Errorf("host did %q", got)
	}
	if len(dialed) != 2 || dialed[0] != vsockfence.DefaultHostCID || dialed[1] != 7000 {
		t.Errorf("dialed cid/port %v", dialed)
	}
	// A node without a host-map entry is not this device's to fence.
	if _, err := d.Fence(ctx(t), stonithd.Request{Target: "n9", Action: stonithd.ActionReboot}); !errors.Is(err, stonithd.ErrNoDevice) {
		t.Errorf("unmapped node: %v", err)
	}
	// A guest with another key is refused, and nothing runs on the host.
	wrong := filepath.Join(dir, "wrong")
	_ = os.WriteFile(wrong, []byte("another-key-another-key-another!"), 0o600)
	dev2, _ := stonithd.NewDeviceFromParams("vsock", stonithd.BuiltinVsock, map[string]string{
		"key_file": wrong, "pcmk_host_map": "n2:vm-n2", "pcmk_reboot_retries": "0",
	}, nil, md, stonithd.DeviceOptions{})
	d.SetDevices([]*stonithd.Device{dev2})
	if out, err := d.Fence(ctx(t), stonithd.Request{Target: "n2", Action: stonithd.ActionReboot}); !errors.Is(err, stonithd.ErrFailed) {
		t.Errorf("wrong key: %v %+v", err, out.Entry)
	}
	select {
	case c := <-calls:
		t.Errorf("host ran %q for a guest with the wrong key", c)
	default:
	}
}

func TestOutputIsBounded(t *testing.T) {
	r := New(Config{MaxOutput: 1000})
	dev := scriptDevice(t, "head -c 100000 /dev/zero | tr '\\0' x; echo; echo n2", nil)
	res := stonithd.RunQuery(ctx(t), r, dev, "monitor", "")
	if !res.OK() || len(res.Output) != 1000 {
		t.Errorf("rc %d, %d bytes of output, want 1000", res.RC, len(res.Output))
	}
}
