package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients"
	cmapclient "ringmaster/clients/confdb"
	"ringmaster/internal/testutil"
)

// ringdBin is the daemon built once for these tests: they run the real
// binary, as operators and systemd do.
var ringdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringd-test")
	if err != nil {
		panic(err)
	}
	ringdBin = filepath.Join(dir, "ringd")
	if out, err := exec.Command("go", "build", "-o", ringdBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ringd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, dir string, extraTotem string) string {
	t.Helper()
	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o400))
	cfg := fmt.Sprintf(`[totem]
cluster_name = "t"
transport = "udpu"
port = %d
token = 1000
%s
crypto_cipher = "aes256"
keyfile = %q

[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"

[ipc]
socket = %q

[system]
state_dir = %q
`, 20000+os.Getpid()%20000, extraTotem, key, filepath.Join(dir, "ringd.sock"), dir)
	p := filepath.Join(dir, "corosync.toml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

type proc struct {
	cmd  *exec.Cmd
	log  *strings.Builder
	done chan error
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(ringdBin, args...), log: &strings.Builder{}, done: make(chan error, 1)}
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func status(sock string) (*clients.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := clients.Dial(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx)
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "")
	out, err := exec.Command(ringdBin, "--check", "-c", p).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "is valid")

	bad := filepath.Join(dir, "bad.toml")
	data, _ := os.ReadFile(p)
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(data), "token = 1000", "token = 5\ntokn = 1", 1)), 0o644))
	out, err = exec.Command(ringdBin, "--check", "-c", bad).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(out), "bad.toml:5: totem.token: must be at least 10 ms, got 5")
	assert.Contains(t, string(out), "bad.toml:6: totem.tokn: unknown key")

	out, err = exec.Command(ringdBin, "--version").CombinedOutput()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "ringd "))
}

// TestCheckKeyfile: `ringd --check` (systemd's ExecStartPre) fails on every
// keyfile that ringd then refuses to start with, naming file, line and key,
// and so does startup.
func TestCheckKeyfile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	key := filepath.Join(dir, "authkey")
	for _, tc := range []struct {
		name, want string
		setup      func()
	}{
		{"missing", "corosync.toml:8: totem.keyfile: stat " + key + ": no such file or directory", func() {
			require.NoError(t, os.Remove(key))
		}},
		{"8 bytes", "corosync.toml:8: totem.keyfile: " + key + ": a key is 16-4096 bytes, got 8", func() {
			require.NoError(t, os.WriteFile(key, []byte("12345678"), 0o600))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			out, err := exec.Command(ringdBin, "--check", "-c", cfg).CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "--check passed: %s", out)
			assert.Equal(t, 1, ee.ExitCode())
			assert.Contains(t, string(out), tc.want)

			out, err = exec.Command(ringdBin, "-c", cfg, "--node", "1").CombinedOutput()
			require.Error(t, err, "ringd started with a keyfile --check refuses")
			assert.Contains(t, string(out), tc.want)
		})
	}
}

// TestOneNodeLifecycle: status over IPC, a rejected reload keeps the
// running configuration, SIGTERM exits 0.
func TestOneNodeLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	sock := filepath.Join(dir, "ringd.sock")
	// systemd's notify socket: ringd must say READY=1 once it listens.
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	require.NoError(t, err)
	defer notify.Close()
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	p := start(t, "-c", cfg, "--node", "n1")
	buf := make([]byte, 256)
	require.NoError(t, notify.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := notify.Read(buf)
	require.NoError(t, err, "no sd_notify message")
	assert.Contains(t, string(buf[:n]), "READY=1")
	_, err = status(sock)
	require.NoError(t, err, "socket is up when READY=1 is sent")
	var st *clients.Status
	testutil.WaitFor(t, 10*time.Second, "ringd answers status", func() bool {
		var err error
		st, err = status(sock)
		return err == nil && len(st.Members) == 1 && st.Synced
	})
	assert.Equal(t, uint32(1), st.NodeID)
	assert.Equal(t, "t", st.ClusterName)
	assert.Equal(t, "operational", st.State)
	assert.Equal(t, []clients.Member{{NodeID: 1, Name: "n1", Addr: st.Members[0].Addr}}, st.Members)
	assert.NotZero(t, st.RingID.Seq)
	assert.Equal(t, int64(1000), st.TokenMS)
	assert.Equal(t, int64(1200), st.ConsensusMS)

	// A broken file on SIGHUP is rejected; ringd keeps running.
	good, _ := os.ReadFile(cfg)
	require.NoError(t, os.WriteFile(cfg, append(good, []byte("\nbogus = 1\n")...), 0o644))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	testutil.WaitFor(t, 5*time.Second, "reload rejection logged", func() bool {
		return strings.Contains(p.log.String(), "reload rejected")
	})
	_, err = status(sock)
	require.NoError(t, err, "ringd still serves after a rejected reload")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "exit status after SIGTERM\n%s", p.log.String())
	case <-time.After(10 * time.Second):
		t.Fatal("ringd did not exit after SIGTERM")
	}
	_, err = os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "socket removed on exit")
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	out, err := exec.Command(ringdBin, "-c", cfg, "--node", "n7").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), `--node "n7" matches no nodeid or name`)

	require.NoError(t, os.Remove(filepath.Join(dir, "authkey")))
	out, err = exec.Command(ringdBin, "-c", cfg, "--node", "1").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "totem.keyfile")
}

// cmapGet reads one cmap key as text.
func cmapGet(t *testing.T, sock, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := cmapclient.Dial(ctx, sock)
	require.NoError(t, err)
	defer c.Close()
	e, err := c.Get(ctx, key)
	require.NoError(t, err, key)
	return e.Value.String()
}

// reload rewrites the configuration, sends SIGHUP and waits for the n-th
// log line containing want.
func reload(t *testing.T, p *proc, cfg, content, want string) {
	t.Helper()
	n := strings.Count(p.log.String(), want)
	require.NoError(t, os.WriteFile(cfg, []byte(content), 0o644))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	testutil.WaitFor(t, 5*time.Second, "reload logs "+want, func() bool {
		return strings.Count(p.log.String(), want) > n
	})
}

// TestReloadReportsRunningValues: a reload that changes something needing
// a restart (the token) leaves status and cmap on the running value, both
// listing the change as pending; a cipher change is refused with the
// reason; a key change within the cipher is applied and reported.
func TestReloadReportsRunningValues(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	sock := filepath.Join(dir, "ringd.sock")
	p := start(t, "-c", cfg, "--node", "n1")
	testutil.WaitFor(t, 10*time.Second, "ringd answers status", func() bool {
		st, err := status(sock)
		return err == nil && st.Synced
	})
	orig, err := os.ReadFile(cfg)
	require.NoError(t, err)

	// token 1000 -> 300: pending, not applied, and reported so.
	reload(t, p, cfg, strings.Replace(string(orig), "token = 1000", "token = 300", 1), "configuration reloaded")
	assert.Contains(t, p.log.String(), "takes effect only after a restart")
	st, err := status(sock)
	require.NoError(t, err)
	assert.Equal(t, int64(1000), st.TokenMS, "status reports the running token")
	assert.Equal(t, int64(1000), st.Effective["token"])
	assert.Equal(t, []string{"totem.token"}, st.PendingRestart)
	assert.Equal(t, "1000", cmapGet(t, sock, "runtime.config.totem.token"))
	assert.Equal(t, "1000", cmapGet(t, sock, "totem.token"))
	assert.Equal(t, "totem.token", cmapGet(t, sock, "runtime.config.pending_restart"))

	// Back to 1000: nothing pending any more.
	reload(t, p, cfg, string(orig), "configuration reloaded")
	st, err = status(sock)
	require.NoError(t, err)
	assert.Empty(t, st.PendingRestart)
	assert.Equal(t, "", cmapGet(t, sock, "runtime.config.pending_restart"))

	// aes256 -> chacha20 is refused with the reason, not "reloaded".
	reload(t, p, cfg, strings.Replace(string(orig), `crypto_cipher = "aes256"`, `crypto_cipher = "chacha20"`, 1),
		"totem.crypto_cipher cannot change by reload")
	assert.Contains(t, p.log.String(), "reload rejected")
	assert.Equal(t, "aes256", cmapGet(t, sock, "totem.crypto_cipher"))

	// A new key in the same cipher is applied and cmap names it.
	key2 := filepath.Join(dir, "authkey2")
	require.NoError(t, os.WriteFile(key2, []byte("fedcba9876543210fedcba9876543210"), 0o400))
	key1 := filepath.Join(dir, "authkey")
	withKey2 := strings.Replace(string(orig), "keyfile = \""+key1+"\"", "keyfile = \""+key2+"\"\nprevious_keyfiles = [\""+key1+"\"]", 1)
	require.NotEqual(t, string(orig), withKey2)
	reload(t, p, cfg, withKey2, "configuration reloaded")
	assert.Equal(t, key2, cmapGet(t, sock, "totem.keyfile"))
	assert.Equal(t, key1, cmapGet(t, sock, "totem.previous_keyfiles"))
	st, err = status(sock)
	require.NoError(t, err)
	assert.Empty(t, st.PendingRestart)
	testutil.WaitFor(t, 10*time.Second, "ring still operational with the new key", func() bool {
		st, err := status(sock)
		return err == nil && st.State == "operational"
	})
}

// TestReloadRefusesEnablingCrypto: none -> aes256 by reload would be
// reported as reloaded while the datagrams stay unencrypted; it is refused.
func TestReloadRefusesEnablingCrypto(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	orig, err := os.ReadFile(cfg)
	require.NoError(t, err)
	none := strings.Replace(string(orig), `crypto_cipher = "aes256"`, `crypto_cipher = "none"`, 1)
	require.NoError(t, os.WriteFile(cfg, []byte(none), 0o644))
	sock := filepath.Join(dir, "ringd.sock")
	p := start(t, "-c", cfg, "--node", "n1")
	testutil.WaitFor(t, 10*time.Second, "ringd answers status", func() bool {
		st, err := status(sock)
		return err == nil && st.Synced
	})
	reload(t, p, cfg, string(orig), "reload rejected")
	assert.Contains(t, p.log.String(), `totem.crypto_cipher cannot change by reload (running "none", file "aes256")`)
	assert.NotContains(t, p.log.String(), "configuration reloaded")
	assert.Equal(t, "none", cmapGet(t, sock, "totem.crypto_cipher"))
}

// TestStartupCleansTempStateFiles: temporary state files a crash left in
// state_dir are removed at startup; only ringd's own patterns.
func TestStartupCleansTempStateFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	ours := []string{"ringseq.1.tmp123456", "epoch.1.tmp42", "votequorum.json.tmp98765"}
	others := []string{"ringseq.2.tmp123456", "notes.tmp1", "votequorum.json.tmpx"}
	for _, n := range append(append([]string{}, ours...), others...) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o600))
	}
	sock := filepath.Join(dir, "ringd.sock")
	p := start(t, "-c", cfg, "--node", "n1")
	testutil.WaitFor(t, 10*time.Second, "ringd answers status", func() bool {
		_, err := status(sock)
		return err == nil
	})
	for _, n := range ours {
		_, err := os.Stat(filepath.Join(dir, n))
		assert.True(t, os.IsNotExist(err), "%s removed", n)
		assert.Contains(t, p.log.String(), n)
	}
	for _, n := range others {
		_, err := os.Stat(filepath.Join(dir, n))
		assert.NoError(t, err, "%s kept", n)
	}
}
