package daemon

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"ringmaster/internal/events"
	"ringmaster/reconfig"
	"ringmaster/totem/exec"
)

// keyRing records the key lists the ring is given.
type keyRing struct {
	RingDriver
	keys [][]byte
}

func (r *keyRing) SetKeys(k [][]byte) error {
	r.keys = slices.Clone(k)
	return nil
}

func (r *keyRing) has(k []byte) bool {
	return slices.ContainsFunc(r.keys, func(x []byte) bool { return bytes.Equal(x, k) })
}

// timerHost runs AfterFunc timers when the test says.
type timerHost struct {
	exec.Host
	log    *zap.Logger
	ev     *events.Log
	timers []func()
}

func (h *timerHost) AfterFunc(_ time.Duration, f func()) func() {
	i := len(h.timers)
	h.timers = append(h.timers, f)
	return func() { h.timers[i] = nil }
}
func (h *timerHost) Log() *zap.Logger         { return h.log }
func (h *timerHost) Events() events.Recorder  { return h.ev }
func (h *timerHost) fire(t *testing.T, i int) { t.Helper(); f := h.timers[i]; h.timers[i] = nil; f() }

func keyTestService(t *testing.T, old []byte) (*reloadService, *keyRing, *timerHost) {
	t.Helper()
	cfg := parseTOML(t, "a", "")
	r := &keyRing{keys: [][]byte{old}}
	d := &Daemon{ring: r, cfg: cfg}
	d.keys.set([][]byte{old})
	log := zaptest.NewLogger(t)
	h := &timerHost{log: log, ev: events.New(16, log)}
	s := &reloadService{d: d, host: h, log: log, m: reconfig.New(1), start: time.Now(),
		prepared: map[reconfig.ID]*preparedReload{}, waiting: map[reconfig.ID]waitingClient{}}
	return s, r, h
}

func (s *reloadService) testPrepared(id reconfig.ID, keys [][]byte, preloaded bool) *preparedReload {
	cfg := s.d.Config()
	p := &preparedReload{running: cfg, next: cfg, file: cfg, keys: keys, preloaded: preloaded}
	s.prepared[id] = p
	return p
}

// TestReloadKeyGrace: a key the cluster-wide reload dropped keeps opening
// datagrams for its grace period, and no longer after it, whatever other
// reloads do meanwhile. Before, the end of the grace was skipped for good
// while another reload was prepared (the old key stayed accepted until a
// restart), and an aborted reload dropped it before its grace ended.
func TestReloadKeyGrace(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)

	t.Run("grace ends while another reload is prepared", func(t *testing.T) {
		s, r, h := keyTestService(t, oldKey)
		id1, id2 := reconfig.ID{Initiator: 1, Seq: 1}, reconfig.ID{Initiator: 1, Seq: 2}
		s.testPrepared(id1, [][]byte{newKey}, true)
		s.act(reconfig.Action{Kind: reconfig.ActCommit, ID: id1, Outcome: &reconfig.Outcome{ID: id1}})
		if !r.has(newKey) || !r.has(oldKey) || !bytes.Equal(r.keys[0], newKey) {
			t.Fatalf("after the commit the ring has %x (want the new key first, the old one in its grace)", r.keys)
		}
		s.testPrepared(id2, [][]byte{newKey}, false) // the next reload, same keys
		h.fire(t, len(h.timers)-1)                   // the grace ends
		s.act(reconfig.Action{Kind: reconfig.ActCommit, ID: id2, Outcome: &reconfig.Outcome{ID: id2}})
		if r.has(oldKey) {
			t.Fatalf("the dropped key still opens datagrams after its grace: %x", r.keys)
		}
	})

	t.Run("an abort keeps the grace", func(t *testing.T) {
		s, r, h := keyTestService(t, oldKey)
		id1, id2 := reconfig.ID{Initiator: 1, Seq: 1}, reconfig.ID{Initiator: 1, Seq: 2}
		s.testPrepared(id1, [][]byte{newKey}, true)
		s.act(reconfig.Action{Kind: reconfig.ActCommit, ID: id1, Outcome: &reconfig.Outcome{ID: id1}})
		third := bytes.Repeat([]byte{3}, 32)
		s.testPrepared(id2, [][]byte{third, newKey}, true)
		if err := s.d.keys.change(r.SetKeys, func(k *keyState) { k.preload = [][]byte{third} }); err != nil { // as prepareReload
			t.Fatal(err)
		}
		if !r.has(third) || !r.has(oldKey) {
			t.Fatalf("pre-loading dropped a key in its grace: %x", r.keys)
		}
		s.act(reconfig.Action{Kind: reconfig.ActAbort, ID: id2, Outcome: &reconfig.Outcome{ID: id2, Err: reconfig.ErrTimeout}})
		if !r.has(oldKey) || r.has(third) || !bytes.Equal(r.keys[0], newKey) {
			t.Fatalf("after the abort the ring has %x (want new, old in its grace, not the pre-loaded one)", r.keys)
		}
		h.fire(t, len(h.timers)-1)
		if r.has(oldKey) || len(r.keys) != 1 {
			t.Fatalf("after the grace the ring has %x", r.keys)
		}
	})
}
