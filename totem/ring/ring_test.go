package ring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"ringmaster/totem"
	"ringmaster/totem/srp"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
	"ringmaster/totem/wire"
)

// got is one delivered message, reduced to what the order checks need.
type got struct {
	Sender  totem.NodeID
	Service uint16
	ID      uint16
	Len     int
	Sum     uint32
}

// recorder is a totem.Events that keeps everything and lets tests wait for
// conditions on it.
type recorder struct {
	mu    sync.Mutex
	cond  *sync.Cond
	msgs  []got
	confs []totem.ConfChange
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) Deliver(m totem.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, got{m.Sender, m.Service, m.ID, len(m.Payload), crc32.ChecksumIEEE(m.Payload)})
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *recorder) ConfChange(c totem.ConfChange) {
	r.mu.Lock()
	r.confs = append(r.confs, c)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// lastRegular is the last regular configuration delivered (zero if none).
func (r *recorder) lastRegular() totem.ConfChange {
	for i := len(r.confs) - 1; i >= 0; i-- {
		if r.confs[i].Kind == totem.Regular {
			return r.confs[i]
		}
	}
	return totem.ConfChange{}
}

// waitFor waits until cond (called with r.mu held) holds, or fails the test
// after timeout.
func (r *recorder) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	expired := false
	timer := time.AfterFunc(timeout, func() {
		r.mu.Lock()
		expired = true
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() {
		if expired {
			confs := r.confs
			if len(confs) > 6 {
				confs = confs[len(confs)-6:]
			}
			t.Fatalf("timed out after %v waiting for %s; %d configurations, the last %+v; %d messages", timeout, what, len(r.confs), confs, len(r.msgs))
		}
		r.cond.Wait()
	}
}

// cluster is a set of rings run by one test.
type cluster struct {
	t       testing.TB
	ids     []totem.NodeID
	rings   map[totem.NodeID]*Ring
	recs    map[totem.NodeID]*recorder
	cancels map[totem.NodeID]context.CancelFunc
	errs    map[totem.NodeID]chan error
}

// testTimings are short enough for quick tests and long enough for -race
// on a shared 2-core machine.
func testTimings() srp.Timings { return srp.DefaultTimings(400 * time.Millisecond) }

func startCluster(t testing.TB, cfgs []Config) *cluster {
	t.Helper()
	c := &cluster{t: t, rings: map[totem.NodeID]*Ring{}, recs: map[totem.NodeID]*recorder{},
		cancels: map[totem.NodeID]context.CancelFunc{}, errs: map[totem.NodeID]chan error{}}
	for _, cfg := range cfgs {
		rec := newRecorder()
		r, err := New(cfg, rec, zaptest.NewLogger(t).Named(fmt.Sprint(cfg.Node)))
		if err != nil {
			t.Fatal(err)
		}
		c.ids = append(c.ids, cfg.Node)
		c.rings[cfg.Node], c.recs[cfg.Node] = r, rec
	}
	for _, id := range c.ids {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancels[id] = cancel
		errc, r := make(chan error, 1), c.rings[id]
		c.errs[id] = errc
		go func() { errc <- r.Run(ctx) }()
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.stop(id)
		}
	})
	return c
}

// stop ends a node abruptly (as a crash) and checks Run's result.
func (c *cluster) stop(id totem.NodeID) {
	c.t.Helper()
	if c.cancels[id] == nil {
		return
	}
	c.cancels[id]()
	c.cancels[id] = nil
	if err := <-c.errs[id]; err != nil {
		c.t.Errorf("node %d: Run: %v", id, err)
	}
}

// waitRing waits until every node in ids has installed a regular
// configuration of exactly ids.
func (c *cluster) waitRing(ids ...totem.NodeID) {
	c.t.Helper()
	for _, id := range ids {
		c.recs[id].waitFor(c.t, 30*time.Second, fmt.Sprintf("node %d in ring %v", id, ids), func() bool {
			return slices.Equal(c.recs[id].lastRegular().Members, ids)
		})
	}
}

// send retries on ErrTryAgain (the queue is bounded), waiting for
// deliveries to make room.
func (c *cluster) send(from totem.NodeID, svc, id uint16, g totem.Guarantee, payload []byte) {
	c.t.Helper()
	for {
		err := c.rings[from].Send(svc, id, g, payload)
		if err == nil {
			return
		}
		if !errors.Is(err, totem.ErrTryAgain) {
			c.t.Fatalf("send: %v", err)
		}
		rec := c.recs[from]
		rec.mu.Lock()
		n := len(rec.msgs)
		rec.mu.Unlock()
		rec.waitFor(c.t, 30*time.Second, "room in the send queue", func() bool { return len(rec.msgs) > n })
	}
}

// checkOrder waits until every node in ids delivered want messages of
// service svc and checks they delivered them in the same order.
func (c *cluster) checkOrder(svc uint16, want int, ids ...totem.NodeID) {
	c.t.Helper()
	var ref []got
	for _, id := range ids {
		rec := c.recs[id]
		var mine []got
		rec.waitFor(c.t, 60*time.Second, fmt.Sprintf("%d messages on node %d", want, id), func() bool {
			mine = mine[:0]
			for _, m := range rec.msgs {
				if m.Service == svc {
					mine = append(mine, m)
				}
			}
			return len(mine) >= want
		})
		if len(mine) != want {
			c.t.Fatalf("node %d delivered %d messages of service %d, want %d", id, len(mine), svc, want)
		}
		if ref == nil {
			ref = slices.Clone(mine)
			continue
		}
		if !slices.Equal(ref, mine) {
			c.t.Fatalf("node %d delivered another order than node %d", id, ids[0])
		}
	}
}

func payloadFor(from totem.NodeID, i, size int) []byte {
	p := bytes.Repeat([]byte{byte(from)}, size)
	if size >= 4 {
		p[0], p[1], p[2], p[3] = byte(i), byte(i>>8), byte(from), 0xAA
	}
	return p
}

// exercise forms a ring of three, checks total order of small and 1 MiB
// messages, stops node 3 and checks that 1 and 2 re-form and go on.
func exercise(t *testing.T, cfgs []Config) {
	c := startCluster(t, cfgs)
	c.waitRing(1, 2, 3)

	const perNode = 200
	for i := range perNode {
		for _, id := range c.ids {
			g := totem.Agreed
			if i%10 == 0 {
				g = totem.Safe
			}
			c.send(id, 7, uint16(i), g, payloadFor(id, i, i%300))
		}
	}
	big := payloadFor(2, 1, totem.MaxMessageSize)
	c.send(2, 7, 9999, totem.Agreed, big)
	c.send(1, 7, 10000, totem.Agreed, payloadFor(1, 2, 1600))
	c.checkOrder(7, 3*perNode+2, 1, 2, 3)
	rec := c.recs[3]
	rec.mu.Lock()
	found := slices.ContainsFunc(rec.msgs, func(g got) bool {
		return g.ID == 9999 && g.Len == len(big) && g.Sum == crc32.ChecksumIEEE(big)
	})
	rec.mu.Unlock()
	if !found {
		t.Fatal("1 MiB message not delivered intact")
	}

	c.stop(3)
	c.waitRing(1, 2)
	for i := range 50 {
		c.send(1, 8, uint16(i), totem.Agreed, payloadFor(1, i, 100))
		c.send(2, 8, uint16(i), totem.Safe, payloadFor(2, i, 2000))
	}
	c.checkOrder(8, 100, 1, 2)

	st := c.rings[1].Status()
	if st.State != totem.StateOperational || !slices.Equal(st.Members, []totem.NodeID{1, 2}) {
		t.Fatalf("status %+v", st)
	}
	if st.Counters.DatagramsIn == 0 || st.Counters.DatagramsOut == 0 || st.Counters.MessagesOut == 0 || st.Counters.Gathers == 0 {
		t.Fatalf("counters %+v", st.Counters)
	}
	if st.Counters.AuthFailures != 0 {
		t.Fatalf("auth failures: %+v", st.Counters)
	}
	// Every datagram carries at least the envelope's header.
	if cn := st.Counters; cn.BytesIn < 30*cn.DatagramsIn || cn.BytesOut < 30*cn.DatagramsOut {
		t.Fatalf("bytes: %+v", cn)
	}
	// No genuine datagram is taken for a replay or rejected otherwise
	// (udp: the multicast and unicast sockets' readers reorder a
	// sender's datagrams; the replay window must absorb that).
	for _, id := range []totem.NodeID{1, 2} {
		cn := c.rings[id].Counters()
		if cn.Replayed+cn.UnknownNode+cn.BadAddress+cn.OutOfRange+cn.Malformed != 0 {
			t.Fatalf("node %d rejected genuine datagrams: %+v", id, cn)
		}
	}
}

func memConfigs(t testing.TB, n int, cipher string) []Config {
	mn := transport.NewMemNetwork(0)
	dir := t.TempDir()
	var cfgs []Config
	for i := 1; i <= n; i++ {
		cfgs = append(cfgs, Config{
			Node: totem.NodeID(i), ClusterName: "test", Transport: "mem", MemNet: mn,
			Timings: testTimings(), NetMTU: 1500, Cipher: cipher, Keys: [][]byte{bytes.Repeat([]byte{1}, 32)},
			StateDir: dir,
		})
	}
	return cfgs
}

func udpuConfigs(t testing.TB, n int) []Config {
	return udpuConfigsOn(t, transporttest.LoopbackAddrs(t, n))
}

// udpuConfigsOn is a udpu ring of one node per address (node i+1 on
// addrs[i]).
func udpuConfigsOn(t testing.TB, addrs []netip.AddrPort) []Config {
	peers := peersOf(addrs)
	dir := t.TempDir()
	var cfgs []Config
	for i, a := range addrs {
		cfgs = append(cfgs, Config{
			Node: totem.NodeID(i + 1), ClusterName: "test", Transport: "udpu", Bind: a, Peers: peers,
			Timings: testTimings(), NetMTU: 1500, Cipher: "aes256", Keys: [][]byte{bytes.Repeat([]byte{1}, 32)},
			StateDir: dir,
		})
	}
	return cfgs
}

// peersOf maps node i+1 to addrs[i].
func peersOf(addrs []netip.AddrPort) map[totem.NodeID]netip.AddrPort {
	peers := map[totem.NodeID]netip.AddrPort{}
	for i, a := range addrs {
		peers[totem.NodeID(i+1)] = a
	}
	return peers
}

func TestRingMem(t *testing.T) { exercise(t, memConfigs(t, 3, "chacha20")) }

func TestRingUDPU(t *testing.T) { exercise(t, udpuConfigs(t, 3)) }

// TestRingUDPMulticast runs the same over IPv4 multicast inside a private
// network namespace (root only; required with CI=true).
func TestRingUDPMulticast(t *testing.T) {
	peers := map[totem.NodeID]netip.AddrPort{}
	for id := totem.NodeID(1); id <= 3; id++ {
		peers[id] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(id)}), 5405)
	}
	dir := t.TempDir()
	var cfgs []Config
	for id := totem.NodeID(1); id <= 3; id++ {
		cfgs = append(cfgs, Config{
			Node: id, ClusterName: "test", Transport: "udp", Bind: peers[id], Peers: peers,
			Mcast: netip.MustParseAddrPort("239.192.7.1:5405"), TTL: 1,
			Timings: testTimings(), NetMTU: 1500, Cipher: "aes256", Keys: [][]byte{bytes.Repeat([]byte{1}, 32)},
			StateDir: dir,
		})
	}
	// The sockets are opened (by New) inside the namespace.
	var c *cluster
	transporttest.InNetns(t, func() error {
		c = startCluster(t, cfgs)
		return nil
	})
	c.waitRing(1, 2, 3)
	for i := range 100 {
		for _, id := range c.ids {
			c.send(id, 7, uint16(i), totem.Agreed, payloadFor(id, i, i*13))
		}
	}
	c.send(3, 7, 999, totem.Safe, payloadFor(3, 0, 300_000))
	c.checkOrder(7, 301, 1, 2, 3)
	c.stop(2)
	c.waitRing(1, 3)
}

// TestOtherClusterIgnored: a node of another cluster (same key) on the same
// network is never let in; its datagrams count as authentication failures.
func TestOtherClusterIgnored(t *testing.T) {
	cfgs := memConfigs(t, 3, "aes256")
	cfgs[2].ClusterName = "other"
	c := startCluster(t, cfgs)
	c.waitRing(1, 2)
	c.waitRing(3)
	c.recs[1].waitFor(t, 10*time.Second, "auth failures", func() bool { return c.rings[1].Counters().AuthFailures > 0 })
}

// TestGracefulLeave: Leave broadcasts a leave, so the others re-form
// without waiting for the token timeout, and Run returns nil.
func TestGracefulLeave(t *testing.T) {
	cfgs := memConfigs(t, 3, "none")
	c := startCluster(t, cfgs)
	c.waitRing(1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.rings[3].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-c.errs[3]; err != nil {
		t.Fatalf("Run after Leave: %v", err)
	}
	c.cancels[3] = nil
	if err := c.rings[3].Send(1, 1, totem.Agreed, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Leave: %v", err)
	}
	c.waitRing(1, 2)
}

// TestRestartKeepsSeq: a restarted node loads its persisted ring sequence
// and rejoins with a higher ring ID.
func TestRestartKeepsSeq(t *testing.T) {
	cfgs := memConfigs(t, 2, "aes256")
	c := startCluster(t, cfgs)
	c.waitRing(1, 2)
	c.stop(2)
	c.waitRing(1)
	seq, err := loadSeq(seqFile(cfgs[1].StateDir, 2))
	if err != nil || seq == 0 {
		t.Fatalf("persisted seq %d, %v", seq, err)
	}
	before := c.recs[1].lastRegular().Ring
	rec := newRecorder()
	r, err := New(cfgs[1], rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rec.waitFor(t, 30*time.Second, "rejoin", func() bool {
		return slices.Equal(rec.lastRegular().Members, []totem.NodeID{1, 2})
	})
	rec.mu.Lock()
	for _, conf := range rec.confs {
		if conf.Ring.Seq <= seq {
			t.Errorf("restarted node installed ring %v, not above its persisted seq %d", conf.Ring, seq)
		}
	}
	if after := rec.lastRegular().Ring; !before.Less(after) {
		t.Errorf("ring %v after restart, not above %v", after, before)
	}
	rec.mu.Unlock()
}

func TestConfigErrors(t *testing.T) {
	base := memConfigs(t, 1, "aes256")[0]
	for name, mut := range map[string]func(*Config){
		"node 0":      func(c *Config) { c.Node = 0 },
		"no statedir": func(c *Config) { c.StateDir = "" },
		"cipher":      func(c *Config) { c.Cipher = "rot13" },
		"short key":   func(c *Config) { c.Keys = [][]byte{{1, 2}} },
		"transport":   func(c *Config) { c.Transport = "carrier-pigeon" },
		"mtu":         func(c *Config) { c.NetMTU = 100 },
		"no memnet":   func(c *Config) { c.MemNet = nil },
	} {
		cfg := base
		mut(&cfg)
		if _, err := New(cfg, newRecorder(), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: want ErrConfig, got %v", name, err)
		}
	}
}

func TestFrameBudget(t *testing.T) {
	// netmtu 1500 − 28 (IP+UDP) − 46 (envelope: 30-byte header, 16-byte tag) − 52 (srp header).
	if got := FrameBudget(1500, 1); got != 1374 {
		t.Fatalf("FrameBudget(1500, aes256) = %d, want 1374", got)
	}
	// The largest datagram: a sealed frame is a 65507-byte UDP payload.
	if got := FrameBudget(maxDatagram, 1) + wire.McastOverhead + 46 + 28; got != 65535 {
		t.Fatalf("largest sealed frame makes a %d-byte datagram", got)
	}
}

func TestScaleFlow(t *testing.T) {
	base := srp.Timings{WindowSize: 50, MaxMessages: 17}
	for _, tc := range []struct {
		name          string
		frame, rcvbuf int
		window, visit int
	}{
		{"netmtu 1500, 8 MiB buffer", 1386, 16 << 20, 300, 102},
		{"netmtu 1500, 512 KiB buffer", 1386, 1 << 20, 150, 51},
		{"netmtu 1500, rmem_max 208 KiB", 1386, 425984, 50, 17},
		{"netmtu 1500, tiny buffer", 1386, 65536, 50, 17},
		{"netmtu 9000", 8886, 16 << 20, 50, 17},
		{"loopback frames", 65421, 16 << 20, 50, 17},
		{"small netmtu: at most 8×", 500, 16 << 20, 400, 136},
		{"no buffer known", 1386, 0, 300, 102},
	} {
		got, f := scaleFlow(base, tc.frame, tc.rcvbuf)
		if got.WindowSize*f != tc.window || got.MaxMessages*f != tc.visit {
			t.Errorf("%s: window %d, per visit %d; want %d, %d", tc.name, got.WindowSize*f, got.MaxMessages*f, tc.window, tc.visit)
		}
	}
	if got, f := scaleFlow(srp.Timings{}, 65421, 0); got.WindowSize != 50 || got.MaxMessages != 17 || f != 1 {
		t.Errorf("defaults: %+v ×%d", got, f)
	}
}

// mtuTransport reports an interface MTU and a granted receive buffer.
type mtuTransport struct {
	transport.Transport
	mtu, rcvbuf int
}

func (m mtuTransport) MTU() int        { return m.mtu }
func (m mtuTransport) RecvBuffer() int { return m.rcvbuf }

func TestAutoMTU(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mtu, rcvbuf int
		window      int
		want        int
	}{
		{"ethernet", 1500, 16 << 20, 50, 1500},
		{"jumbo", 9000, 16 << 20, 50, 9000},
		{"loopback as root (8 MiB buffer)", 65536, 16 << 20, 50, 65535},
		{"loopback, rmem_max 4 MiB", 65536, 8 << 20, 50, (4 << 20) / 116},
		{"loopback, rmem_max 208 KiB", 65536, 425984, 50, 1836},
		{"tiny buffer: never below Ethernet", 65536, 65536, 50, 1500},
		{"big window", 65536, 16 << 20, 500, (8 << 20) / 1016},
		{"no receive buffer known", 65536, 0, 50, 65535},
	} {
		if got := autoMTU(mtuTransport{mtu: tc.mtu, rcvbuf: tc.rcvbuf}, tc.window); got != tc.want {
			t.Errorf("%s: autoMTU = %d, want %d", tc.name, got, tc.want)
		}
	}
	// A transport that knows nothing (mem): Ethernet.
	if got := autoMTU(struct{ transport.Transport }{}, 50); got != 1500 {
		t.Errorf("plain transport: %d", got)
	}
}

// TestNoFalseFailuresUnderLoad runs a 3-node udpu ring with a 200 ms token
// while both cores are kept busy and every node sends continuously: the
// ring must not lose its token or re-form.
//
// "external": four busy processes (yes > /dev/null) compete with the test
// process in the kernel's scheduler, as other programs on a loaded node do.
//
// "in-process": four busy goroutines share the process with the rings. Go's
// scheduler runs a goroutine woken by the network only when a P is free, so
// with GOMAXPROCS busy goroutines it may wait many 10 ms time slices per hop
// and a 200 ms token is lost; with GOMAXPROCS above the number of busy
// goroutines there is always a P for the ring and the kernel shares the
// cores fairly. The daemon therefore runs with GOMAXPROCS well above the core
// count (see the package documentation); the test does the same.
//
// Whether a 200 ms token survives depends on how loaded the machine is
// besides this test, so it is an opt-in soak, not part of `make test`:
//
//	RINGMASTER_SOAK=1 go test -run NoFalseFailuresUnderLoad -v ./totem/ring
func TestNoFalseFailuresUnderLoad(t *testing.T) {
	if os.Getenv("RINGMASTER_SOAK") == "" {
		t.Skip("a wall-clock property of the whole machine: set RINGMASTER_SOAK=1 to run it")
	}
	const hogs = 4
	t.Run("external", func(t *testing.T) {
		if _, err := exec.LookPath("yes"); err != nil {
			t.Skip("no yes(1) to load the machine")
		}
		var cmds []*exec.Cmd
		for range hogs {
			cmd := exec.Command("yes")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		defer func() {
			for _, cmd := range cmds {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}()
		underLoad(t)
	})
	t.Run("in-process", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(runtime.NumCPU(), hogs) + 4))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range hogs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := 0
				for {
					select {
					case <-stop:
						return
					default:
					}
					for i := range 100000 {
						x += i * i
					}
				}
			}()
		}
		defer func() { close(stop); wg.Wait() }()
		underLoad(t)
	})
}

func underLoad(t *testing.T) {
	cfgs := udpuConfigs(t, 3)
	token := 200 * time.Millisecond
	if raceEnabled {
		// The requirement is for the real binary; under the race
		// detector the same load only checks the logic.
		token = time.Second
	}
	for i := range cfgs {
		cfgs[i].Timings = srp.DefaultTimings(token)
	}
	c := startCluster(t, cfgs)
	c.waitRing(1, 2, 3)
	formed := map[totem.NodeID]int{}
	for _, id := range c.ids {
		c.recs[id].mu.Lock()
		formed[id] = len(c.recs[id].confs)
		c.recs[id].mu.Unlock()
	}
	const perNode = 5000
	var senders sync.WaitGroup
	for _, id := range c.ids {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range perNode {
				c.send(id, 3, uint16(i), totem.Agreed, payloadFor(id, i, 100+i%2000))
			}
		}()
	}
	senders.Wait()
	c.checkOrder(3, 3*perNode, 1, 2, 3)
	for _, id := range c.ids {
		rec := c.recs[id]
		rec.mu.Lock()
		if n := len(rec.confs) - formed[id]; n != 0 {
			t.Errorf("node %d: %d configuration changes under load, the first %+v", id, n, rec.confs[formed[id]])
		}
		rec.mu.Unlock()
		if tl := c.rings[id].Counters().TokenLosses; tl != 0 {
			t.Errorf("node %d: %d token losses", id, tl)
		}
	}
}

// TestStatusSendQueue: Status shows the messages Send queued that the
// Processor has not taken yet (here: Run never started).
func TestStatusSendQueue(t *testing.T) {
	r, err := New(memConfigs(t, 1, "none")[0], newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		if err := r.Send(7, uint16(i), totem.Agreed, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if b := r.Status().Backlog; b.Messages != 3 || b.Bytes != 300 {
		t.Fatalf("backlog %+v, want 3 messages, 300 bytes", b)
	}
}
