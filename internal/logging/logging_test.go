package logging

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"ringmaster/config"
)

// buffer is a WriteSyncer tests read back.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }
func (b *buffer) Sync() error                 { return nil }
func (b *buffer) String() string              { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func TestJSONFormat(t *testing.T) {
	out := &buffer{}
	l, err := NewWith(config.Logging{ToStderr: true, Format: "json"}, Options{Stderr: out})
	require.NoError(t, err)
	l.With(zap.Int("node", 1)).Named("totem").Info("configuration", zap.Strings("members", []string{"1", "2"}))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out.String())), &m), out.String())
	assert.Equal(t, "configuration", m["msg"])
	assert.Equal(t, "totem", m["logger"])
	assert.Equal(t, 1.0, m["node"])
	assert.Equal(t, "info", m["level"])
}

// Apply swaps the outputs under loggers made before it: they keep their
// fields and names, and follow the new level and format.
func TestApplySwapsOutputsUnderDerivedLoggers(t *testing.T) {
	out := &buffer{}
	l, err := NewWith(config.Logging{ToStderr: true, Format: "console"}, Options{Stderr: out})
	require.NoError(t, err)
	derived := l.With(zap.Int("node", 7)).Named("cpg")
	derived.Debug("hidden")
	derived.Info("before")
	require.NotContains(t, out.String(), "hidden")
	require.Contains(t, out.String(), "\tINFO\tcpg\tbefore\t")

	file := filepath.Join(t.TempDir(), "ringd.log")
	require.NoError(t, l.Apply(config.Logging{Logfile: file, Format: "json", Debug: true}))
	derived.Debug("after", zap.String("k", "v"))
	l.Close()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(b), &m), string(b))
	assert.Equal(t, "after", m["msg"])
	assert.Equal(t, "cpg", m["logger"])
	assert.Equal(t, 7.0, m["node"])
	assert.Equal(t, "v", m["k"])
	assert.NotContains(t, out.String(), "after", "stderr is off after the reload")
	assert.Equal(t, file, l.Config().Logfile)
}

func TestApplyFailureKeepsTheRunningLogging(t *testing.T) {
	out := &buffer{}
	l, err := NewWith(config.Logging{ToStderr: true, Format: "console"}, Options{Stderr: out})
	require.NoError(t, err)
	err = l.Apply(config.Logging{Logfile: filepath.Join(t.TempDir(), "missing", "ringd.log"), Format: "json", Debug: true})
	require.ErrorContains(t, err, "logging.logfile")
	l.Debug("still hidden")
	l.Info("still console")
	assert.NotContains(t, out.String(), "still hidden")
	assert.Contains(t, out.String(), "\tINFO\tstill console")
	assert.Equal(t, "console", l.Config().Format)
}

// to_syslog writes each line with its priority to the syslog socket (a
// unixgram socket of the test standing in for /dev/log).
func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer pc.Close()
	l, err := NewWith(config.Logging{ToSyslog: true, Format: "console"}, Options{SyslogNetwork: "unixgram", SyslogAddr: sock})
	require.NoError(t, err)
	defer l.Close()
	l.With(zap.Int("node", 2)).Warn("token lost", zap.Int("rotations", 3))
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 4096)
	n, _, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	msg := string(buf[:n])
	// <28>: facility daemon (3) * 8 + warning (4).
	assert.True(t, strings.HasPrefix(msg, "<28>"), msg)
	assert.Contains(t, msg, "ringd")
	assert.Contains(t, msg, "WARN\ttoken lost\t")
	assert.Contains(t, msg, `"node": 2`)
	assert.Contains(t, msg, `"rotations": 3`)
}

func TestJournalKey(t *testing.T) {
	assert.Equal(t, "MEMBER_NODE", journalKey("member_node"))
	assert.Equal(t, "A_B_C9", journalKey("a.b-c9"))
	assert.Equal(t, zapcore.InfoLevel, levelOf(config.Logging{}))
}
