package cpg_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/cpg/wire"
	"ringmaster/internal/daemon"
	"ringmaster/totem"
)

// socket is where the examples and tests find ringd; TestMain points it at
// a one-node ringd (loopback ring) running in this process.
var socket = "/run/ringmaster/ringd.sock"

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzOnly() {
		// Fuzzing the decoders needs no daemon, and each fuzz worker
		// process would start one on the same ring port.
		os.Exit(m.Run())
	}
	os.Exit(runWithDaemon(m))
}

// fuzzOnly reports whether this process only fuzzes: a fuzz worker, or
// `go test -run '^$' -fuzz X` (scripts/fuzz-all.sh).
func fuzzOnly() bool {
	flagIs := func(name, v string) bool {
		f := flag.Lookup(name)
		return f != nil && f.Value.String() == v
	}
	return flagIs("test.fuzzworker", "true") || !flagIs("test.fuzz", "") && flagIs("test.run", "^$")
}

func runWithDaemon(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cpgd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "ringd.sock")
	cfg := filepath.Join(dir, "corosync.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
[totem]
cluster_name = "test"
crypto_cipher = "none"

[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"

[ipc]
socket = %q

[system]
state_dir = %q

[logging]
to_stderr = false
`, sock, filepath.Join(dir, "state")), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := daemon.New(daemon.Options{ConfigPath: cfg, Node: "1", Version: "test"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ringd:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := waitReady(sock); err != nil {
		fmt.Fprintln(os.Stderr, "ringd did not come up:", err)
		return 1
	}
	socket = sock
	return m.Run()
}

// waitReady waits (with a deadline) until CPG on sock accepts a join,
// i.e. the daemon listens and its first sync is done.
func waitReady(sock string) error {
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := cpgc.Dial(ctx, sock)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Join(ctx, "ready-probe")
		}()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collector records a client's events for condition waits.
type collector struct {
	c       *cpgc.Client
	mu      sync.Mutex
	evs     []cpgc.Event
	msgs    int // messages among evs
	changed chan struct{}
}

func collect(t *testing.T, c *cpgc.Client) *collector {
	col := &collector{c: c, changed: make(chan struct{})}
	go func() {
		for e := range c.Events() {
			col.mu.Lock()
			col.evs = append(col.evs, e)
			if e.Kind == cpgc.EventMessage {
				col.msgs++
			}
			close(col.changed)
			col.changed = make(chan struct{})
			col.mu.Unlock()
		}
		col.mu.Lock()
		close(col.changed)
		col.changed = nil
		col.mu.Unlock()
	}()
	t.Cleanup(func() { c.Close() })
	return col
}

func (col *collector) wait(t *testing.T, what string, cond func([]cpgc.Event) bool) []cpgc.Event {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		col.mu.Lock()
		evs := slices.Clone(col.evs)
		ch := col.changed
		col.mu.Unlock()
		if cond(evs) {
			return evs
		}
		if ch == nil {
			t.Fatalf("stream ended (%v) waiting for %s", col.c.Err(), what)
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d events", what, len(evs))
		}
	}
}

func confchgWith(evs []cpgc.Event, pred func(cpgc.Event) bool) bool {
	return slices.ContainsFunc(evs, func(e cpgc.Event) bool { return e.Kind == cpgc.EventConfChg && pred(e) })
}

func messages(evs []cpgc.Event) []cpgc.Event {
	return slices.DeleteFunc(slices.Clone(evs), func(e cpgc.Event) bool { return e.Kind != cpgc.EventMessage })
}

func dial(t *testing.T, o cpgc.Options) *collector {
	t.Helper()
	c, err := cpgc.DialOptions(testCtx(t), socket, o)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, c)
}

// TestDaemonRoundTrip: join, confchg with this process's pid (read by
// ringd from the socket), totem configuration, agreed and safe messages.
func TestDaemonRoundTrip(t *testing.T) {
	a := dial(t, cpgc.Options{})
	ctx := testCtx(t)
	if err := a.c.Join(ctx, "roundtrip"); err != nil {
		t.Fatal(err)
	}
	pid := uint32(os.Getpid())
	evs := a.wait(t, "own join and totem conf", func(evs []cpgc.Event) bool {
		return len(evs) >= 2
	})
	if e := evs[0]; e.Kind != cpgc.EventConfChg || len(e.Joined) != 1 || e.Joined[0] != (cpgc.Address{NodeID: 1, PID: pid, Reason: cpgc.ReasonJoin}) {
		t.Fatalf("first event %+v", e)
	}
	if e := evs[1]; e.Kind != cpgc.EventTotemConf || !slices.Equal(e.Nodes, []totem.NodeID{1}) {
		t.Fatalf("second event %+v", e)
	}
	if id, err := a.c.LocalNodeID(ctx); err != nil || id != 1 {
		t.Fatalf("local node id %d %v", id, err)
	}
	if tc, err := a.c.TotemConf(ctx); err != nil || !slices.Equal(tc.Members, []totem.NodeID{1}) {
		t.Fatalf("totem conf %+v %v", tc, err)
	}
	if err := a.c.Mcast(ctx, cpgc.Agreed, []byte("agreed")); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Mcast(ctx, cpgc.Safe, []byte("safe")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.McastBatch(ctx, cpgc.FIFO, [][]byte{[]byte("b1"), []byte("b2")}); err != nil {
		t.Fatal(err)
	}
	evs = a.wait(t, "4 messages", func(evs []cpgc.Event) bool { return len(messages(evs)) == 4 })
	var got []string
	for _, e := range messages(evs) {
		if e.Sender != (cpgc.Address{NodeID: 1, PID: pid}) || e.Group != "roundtrip" {
			t.Fatalf("message %+v", e)
		}
		got = append(got, fmt.Sprintf("%s/%s", e.Data, e.Guarantee))
	}
	if want := []string{"agreed/agreed", "safe/safe", "b1/agreed", "b2/agreed"}; !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	gs, err := a.c.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(gs, func(g cpgc.Group) bool {
		return g.Name == "roundtrip" && len(g.Members) == 1 && g.Members[0].PID == pid
	}) {
		t.Fatalf("groups %+v", gs)
	}
	if err := a.c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	a.wait(t, "own leave", func(evs []cpgc.Event) bool {
		return confchgWith(evs, func(e cpgc.Event) bool { return len(e.Left) == 1 && e.Left[0].Reason == cpgc.ReasonLeave })
	})
	if err := a.c.Mcast(ctx, cpgc.Agreed, nil); !errors.Is(err, cpgc.ErrNotJoined) {
		t.Fatalf("mcast after leave: %v", err)
	}
}

// TestDaemonProcDown: a client that closes (or dies: the kernel closes
// its socket the same way) leaves its group with PROCDOWN.
func TestDaemonProcDown(t *testing.T) {
	ctx := testCtx(t)
	a := dial(t, cpgc.Options{})
	b := dial(t, cpgc.Options{PID: 1 << 30})
	if err := a.c.Join(ctx, "procdown"); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Join(ctx, "procdown"); err != nil {
		t.Fatal(err)
	}
	a.wait(t, "b joined", func(evs []cpgc.Event) bool {
		return confchgWith(evs, func(e cpgc.Event) bool { return len(e.Joined) == 1 && e.Joined[0].PID == 1<<30 })
	})
	a.c.Close()
	b.wait(t, "a's procdown", func(evs []cpgc.Event) bool {
		return confchgWith(evs, func(e cpgc.Event) bool {
			return len(e.Left) == 1 && e.Left[0] == cpgc.Address{NodeID: 1, PID: uint32(os.Getpid()), Reason: cpgc.ReasonProcDown} && len(e.Members) == 1
		})
	})
}

// TestDaemonMaxMessage: the largest message crosses the real socket whole.
func TestDaemonMaxMessage(t *testing.T) {
	ctx := testCtx(t)
	a := dial(t, cpgc.Options{})
	if err := a.c.Join(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, cpgc.MaxMessageSize)
	for i := range big {
		big[i] = byte(i % 251)
	}
	if err := a.c.Mcast(ctx, cpgc.Agreed, big); err != nil {
		t.Fatal(err)
	}
	evs := a.wait(t, "the big message", func(evs []cpgc.Event) bool { return len(messages(evs)) == 1 })
	if m := messages(evs)[0]; !slices.Equal(m.Data, big) {
		t.Fatalf("corrupted: %d bytes", len(m.Data))
	}
}

// TestDaemonSlowClientCutoff: a client that floods the group and never
// reads its events is cut off once its output budget is spent; ringd's
// memory stays bounded and the other member keeps receiving.
func TestDaemonSlowClientCutoff(t *testing.T) {
	if raceEnabled {
		// It pushes 64 MiB through the ring before the cut-off, which
		// takes minutes under the race detector; the plain pass of
		// `make test` runs it.
		t.Skip("floods 64 MiB through the ring: run without -race")
	}
	ctx := testCtx(t)
	reader := dial(t, cpgc.Options{PID: 1<<30 + 1})
	if err := reader.c.Join(ctx, "flood"); err != nil {
		t.Fatal(err)
	}
	// The flooder: tiny event buffers and nobody reading them.
	fl, err := cpgc.DialOptions(ctx, socket, cpgc.Options{PID: 1<<30 + 2, EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if err := fl.Join(ctx, "flood"); err != nil {
		t.Fatal(err)
	}
	// Pipelined requests that never wait for their replies, like a
	// client that only writes.
	rec := wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("flood"), make([]byte, 64<<10))
	const maxSent = 8192 // 512 MiB: far beyond the 64 MiB budget
	sent := 0
flood:
	for sent < maxSent {
		select {
		case <-fl.Done():
			break flood
		default:
		}
		fl.Conn().Go(1, wire.ReqMcast, rec)
		sent++
		// Let the reader keep pace so only the flooder is slow. Some
		// of the flood may be refused (TRY_AGAIN while the ring's queue
		// is full: the flooder never reads those replies), so the
		// reader may never see sent-1024 messages: once it has received
		// nothing new for a second, whatever is missing was refused.
		for sent%256 == 0 {
			reader.mu.Lock()
			caught := reader.msgs >= sent-1024
			ch := reader.changed
			reader.mu.Unlock()
			if caught {
				break
			}
			idle := time.NewTimer(time.Second)
			select {
			case <-fl.Done():
				idle.Stop()
				break flood
			case <-ch:
				idle.Stop()
				continue
			case <-idle.C:
			case <-ctx.Done():
				reader.mu.Lock()
				got := reader.msgs
				reader.mu.Unlock()
				t.Fatalf("the reader fell behind: %d of %d messages", got, sent)
			}
			break
		}
	}
	select {
	case <-fl.Done():
	case <-ctx.Done():
		t.Fatalf("the flooder was never cut off after %d messages", sent)
	}
	t.Logf("flooder cut off after %d messages of 64 KiB: %v", sent, fl.Err())
	reader.wait(t, "the flooder's procdown", func(evs []cpgc.Event) bool {
		return confchgWith(evs, func(e cpgc.Event) bool {
			return len(e.Left) == 1 && e.Left[0].PID == 1<<30+2 && e.Left[0].Reason == cpgc.ReasonProcDown
		})
	})
	// The reader is unaffected: it still sends and receives.
	if err := reader.c.Mcast(ctx, cpgc.Agreed, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	reader.wait(t, "its own message", func(evs []cpgc.Event) bool {
		m := messages(evs)
		return len(m) > 0 && string(m[len(m)-1].Data) == "still here"
	})
	// ringd (in this process) holds at most about one budget for the
	// flooder; its memory went back once it was cut off.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > 256<<20 {
		t.Fatalf("heap in use %d MiB after the flood", ms.HeapInuse>>20)
	}
	// The flooder learns it was cut off from its connection's error
	// (ErrSlowClient when the last frame reaches it, else the broken
	// socket).
	if fl.Err() == nil {
		t.Fatal("the flooder has no error")
	}
}
