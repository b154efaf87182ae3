package transport_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// collector reads every receiver of a transport: every payload (got),
// and by the link it came in on (byLink: Links transports).
type collector struct {
	mu     sync.Mutex
	got    []string
	byLink map[uint8][]string
	cond   *sync.Cond
	wg     sync.WaitGroup
}

func collect(t *testing.T, tr transport.Transport) *collector {
	c := &collector{byLink: map[uint8][]string{}}
	c.cond = sync.NewCond(&c.mu)
	for _, r := range tr.Receivers() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			msgs := make([]transport.Msg, 8)
			for i := range msgs {
				msgs[i].Buf = make([]byte, 2048)
			}
			for {
				n, err := r.Recv(msgs)
				if err != nil {
					if !errors.Is(err, transport.ErrClosed) {
						t.Errorf("Recv: %v", err)
					}
					return
				}
				c.mu.Lock()
				for _, m := range msgs[:n] {
					m.Datagrams(func(d []byte) {
						c.got = append(c.got, string(d))
						c.byLink[m.Link] = append(c.byLink[m.Link], string(d))
					})
				}
				c.cond.Broadcast()
				c.mu.Unlock()
			}
		}()
	}
	return c
}

// waitUntil waits until done (called with mu held) holds, or fails with
// what() after a deadline (UDP on loopback does not lose datagrams at
// this rate).
func (c *collector) waitUntil(t *testing.T, done func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	timer := time.AfterFunc(10*time.Second, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		c.cond.Wait()
	}
}

// waitFor waits until every string in want was received.
func (c *collector) waitFor(t *testing.T, want ...string) {
	t.Helper()
	c.waitUntil(t, func() bool {
		for _, w := range want {
			if !slices.Contains(c.got, w) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("missing datagrams: want %q, got %q", want, c.got) })
}

// wait waits until want came in on link l.
func (c *collector) wait(t *testing.T, l uint8, want string) {
	t.Helper()
	c.waitUntil(t, func() bool { return slices.Contains(c.byLink[l], want) },
		func() string { return fmt.Sprintf("%q never arrived on link %d; got %v", want, l, c.byLink) })
}

// has reports whether s came in on link l.
func (c *collector) has(l uint8, s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.byLink[l], s)
}

func exercise(t *testing.T, trs map[totem.NodeID]transport.Transport) {
	cols := map[totem.NodeID]*collector{}
	for id, tr := range trs {
		cols[id] = collect(t, tr)
	}
	var bcasts []string
	for id, tr := range trs {
		b := fmt.Sprintf("bcast from %d", id)
		bcasts = append(bcasts, b)
		pkts := []transport.Packet{{To: transport.Broadcast, Data: []byte(b)}}
		for to := range trs {
			pkts = append(pkts, transport.Packet{To: to, Data: fmt.Appendf(nil, "%d to %d", id, to)})
		}
		if n, err := tr.Send(pkts); err != nil || n < len(pkts) {
			t.Fatalf("send from %d: %d, %v", id, n, err)
		}
	}
	for id, c := range cols {
		var want []string
		for _, b := range bcasts {
			if b != fmt.Sprintf("bcast from %d", id) {
				want = append(want, b)
			}
		}
		for from := range trs {
			want = append(want, fmt.Sprintf("%d to %d", from, id))
		}
		c.waitFor(t, want...)
	}
	for _, tr := range trs {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	}
	for id, c := range cols {
		c.wg.Wait() // every reader saw ErrClosed
		for _, g := range c.got {
			var from, to int
			if _, err := fmt.Sscanf(g, "%d to %d", &from, &to); err == nil && to != int(id) {
				t.Errorf("node %d got %q meant for %d", id, g, to)
			}
			if g == fmt.Sprintf("bcast from %d", id) {
				t.Errorf("node %d got its own broadcast", id)
			}
		}
	}
}

func TestMem(t *testing.T) {
	net := transport.NewMemNetwork(0)
	trs := map[totem.NodeID]transport.Transport{}
	for id := totem.NodeID(1); id <= 3; id++ {
		m, err := net.Attach(id)
		if err != nil {
			t.Fatal(err)
		}
		trs[id] = m
	}
	if _, err := net.Attach(1); !errors.Is(err, transport.ErrConfig) {
		t.Fatalf("double attach: %v", err)
	}
	exercise(t, trs)
	if got := net.Nodes(); len(got) != 0 {
		t.Fatalf("nodes after close: %v", got)
	}
}

func TestMemFilter(t *testing.T) {
	net := transport.NewMemNetwork(0)
	a, _ := net.Attach(1)
	b, _ := net.Attach(2)
	defer a.Close()
	defer b.Close()
	net.SetFilter(func(from, to totem.NodeID) bool { return from == to })
	a.Send([]transport.Packet{{To: 2, Data: []byte("dropped")}, {To: 1, Data: []byte("self")}})
	msgs := []transport.Msg{{Buf: make([]byte, 16)}, {Buf: make([]byte, 16)}}
	n, err := a.Recv(msgs)
	if err != nil || n != 1 || string(msgs[0].Buf[:msgs[0].N]) != "self" {
		t.Fatalf("Recv = %d, %v, %q", n, err, msgs[0].Buf[:msgs[0].N])
	}
	b.Send([]transport.Packet{{To: 2, Data: []byte("0123456789abcdefXX")}})
	if n, err := b.Recv(msgs); err != nil || n != 1 || !msgs[0].Truncated {
		t.Fatalf("truncation not reported: %d %v %+v", n, err, msgs[0])
	}
}

func udpuPeers(addrs []netip.AddrPort) map[totem.NodeID]netip.AddrPort {
	peers := map[totem.NodeID]netip.AddrPort{}
	for i, a := range addrs {
		peers[totem.NodeID(i+1)] = a
	}
	return peers
}

// TestUDPU runs three udpu endpoints on 127.0.0.1–3 with random high ports.
func TestUDPU(t *testing.T) {
	addrs := transporttest.LoopbackAddrs(t, 3)
	exerciseUDPU(t, addrs, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), addrs[0].Port()), func(u *transport.UDP) {
		if u.MTU() < 1500 || u.RecvBuffer() <= 0 {
			t.Fatalf("loopback MTU %d, receive buffer %d", u.MTU(), u.RecvBuffer())
		}
	})
}

// exerciseUDPU runs udpu endpoints bound to addrs (node i+1 on addrs[i])
// through exercise; absent is a configured node 9 that is not running
// (sends to it must not disturb the others), check looks at each
// endpoint once bound.
func exerciseUDPU(t *testing.T, addrs []netip.AddrPort, absent netip.AddrPort, check func(*transport.UDP)) {
	t.Helper()
	peers := udpuPeers(addrs)
	peers[9] = absent
	trs := map[totem.NodeID]transport.Transport{}
	for i, a := range addrs {
		u, err := transport.NewUDPU(transport.UDPConfig{Bind: a, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		if u.LocalAddr() != a {
			t.Fatalf("bound %s, want %s", u.LocalAddr(), a)
		}
		check(u)
		trs[totem.NodeID(i+1)] = u
	}
	exercise(t, trs)
}

func TestUDPUConfigErrors(t *testing.T) {
	for name, cfg := range map[string]transport.UDPConfig{
		"no port": {Bind: netip.MustParseAddrPort("127.0.0.1:0")},
		"zone":    {Bind: netip.MustParseAddrPort("[fe80::1%lo]:5405")},
		"peer 0":  {Bind: netip.MustParseAddrPort("127.0.0.1:5405"), Peers: map[totem.NodeID]netip.AddrPort{0: netip.MustParseAddrPort("127.0.0.1:5405")}},
	} {
		if _, err := transport.NewUDPU(cfg); !errors.Is(err, transport.ErrConfig) {
			t.Errorf("%s: want ErrConfig, got %v", name, err)
		}
	}
	if _, err := transport.NewUDP(transport.UDPConfig{Bind: netip.MustParseAddrPort("127.0.0.1:5405"), Mcast: netip.MustParseAddrPort("10.0.0.1:5405")}); !errors.Is(err, transport.ErrConfig) {
		t.Errorf("unicast group: want ErrConfig, got %v", err)
	}
}

// TestUDPMulticast runs three multicast endpoints on 127.0.0.1–3 inside a
// private network namespace (root only; required when CI=true), so the
// group traffic never leaves the test.
func TestUDPMulticast(t *testing.T) {
	trs := map[totem.NodeID]transport.Transport{}
	transporttest.InNetns(t, func() error {
		peers := map[totem.NodeID]netip.AddrPort{}
		for id := totem.NodeID(1); id <= 3; id++ {
			peers[id] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(id)}), 5405)
		}
		return startMulticast(trs, peers, "239.192.7.1:5405")
	})
	exercise(t, trs)
}

// startMulticast opens a udp (multicast) transport per peer, bound to its
// address, on group into trs.
func startMulticast(trs map[totem.NodeID]transport.Transport, peers map[totem.NodeID]netip.AddrPort, group string) error {
	for id, a := range peers {
		u, err := transport.NewUDP(transport.UDPConfig{Bind: a, Peers: peers, TTL: 1, Mcast: netip.MustParseAddrPort(group)})
		if err != nil {
			return err
		}
		trs[id] = u
	}
	return nil
}

func BenchmarkUDPUSendRecv(b *testing.B) {
	benchSendRecv(b, transporttest.LoopbackAddrs(b, 2))
}

func BenchmarkUDPUSendRecv6(b *testing.B) {
	benchSendRecv(b, transporttest.LoopbackAddrs6(b, 2))
}

func benchSendRecv(b *testing.B, addrs []netip.AddrPort) {
	round := sendRecvPair(b, addrs)
	b.SetBytes(32 * 1400)
	b.ReportAllocs()
	for b.Loop() {
		round()
	}
}

// sendRecvPair opens two udpu endpoints and returns a round: a batch of
// 32 datagrams sent by the first and all read by the second.
func sendRecvPair(tb testing.TB, addrs []netip.AddrPort) func() {
	peers := map[totem.NodeID]netip.AddrPort{1: addrs[0], 2: addrs[1]}
	tx, err := transport.NewUDPU(transport.UDPConfig{Bind: addrs[0], Peers: peers})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tx.Close() })
	rx, err := transport.NewUDPU(transport.UDPConfig{Bind: addrs[1], Peers: peers})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rx.Close() })
	const batch = 32
	pkts := make([]transport.Packet, batch)
	for i := range pkts {
		pkts[i] = transport.Packet{To: 2, Data: make([]byte, 1400)}
	}
	msgs := make([]transport.Msg, batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	r := rx.Receivers()[0]
	return func() {
		if _, err := tx.Send(pkts); err != nil {
			tb.Fatal(err)
		}
		for got := 0; got < batch; {
			n, err := r.Recv(msgs)
			if err != nil {
				tb.Fatal(err)
			}
			for _, m := range msgs[:n] {
				if !m.From.IsValid() {
					tb.Fatalf("no source address")
				}
			}
			got += n
		}
	}
}

// TestUDPUNoAllocs: sending and receiving a batch allocates nothing, with
// IPv4 and with IPv6 addresses (reused headers, iovecs and sockaddrs).
func TestUDPUNoAllocs(t *testing.T) {
	for name, addrs := range map[string][]netip.AddrPort{
		"IPv4": transporttest.LoopbackAddrs(t, 2),
		"IPv6": transporttest.LoopbackAddrs6(t, 2),
	} {
		round := sendRecvPair(t, addrs)
		round() // the first sizes the scratch
		if n := testing.AllocsPerRun(50, round); n != 0 {
			t.Errorf("%s: %v allocations per batch of 32", name, n)
		}
	}
}

// TestUDPUSegmented: a burst of equal-sized datagrams (full frames) for the
// same destinations goes out as one segmented message per destination
// (UDP_SEGMENT), and arrives as one slot (UDP_GRO); every receiver still
// gets every datagram, in order and intact, the shorter last one included.
func TestUDPUSegmented(t *testing.T) {
	testUDPUSegmented(t, transporttest.LoopbackAddrs(t, 3))
}

// TestUDPUSegmented6 is TestUDPUSegmented over ::1 (UDP_SEGMENT and
// UDP_GRO on udp6 sockets).
func TestUDPUSegmented6(t *testing.T) {
	testUDPUSegmented(t, transporttest.LoopbackAddrs6(t, 3))
}

func testUDPUSegmented(t *testing.T, addrs []netip.AddrPort) {
	peers := udpuPeers(addrs)
	var trs []*transport.UDP
	for _, a := range addrs {
		u, err := transport.NewUDPU(transport.UDPConfig{Bind: a, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		trs = append(trs, u)
	}
	// A first Recv with 64 KiB slots turns coalescing on.
	newMsgs := func() []transport.Msg {
		msgs := make([]transport.Msg, 64)
		for i := range msgs {
			msgs[i].Buf = make([]byte, 65536) // room for a coalesced burst
		}
		return msgs
	}
	if _, err := trs[0].Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("hello")}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range trs[1:] {
		if _, err := u.Receivers()[0].Recv(newMsgs()); err != nil {
			t.Fatal(err)
		}
	}
	var pkts []transport.Packet
	for i := range 50 {
		size := 1400
		if i == 49 {
			size = 700
		}
		pkts = append(pkts, transport.Packet{To: transport.Broadcast, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	pkts = append(pkts, transport.Packet{To: 2, Data: []byte("token")})
	if n, err := trs[0].Send(pkts); err != nil || n != 2*50+1 {
		t.Fatalf("Send: %d, %v", n, err)
	}
	// hello to two peers, then 49×1400+700 to each and the token.
	if got, want := trs[0].SentBytes(), uint64(2*5+2*(49*1400+700)+5); got != want {
		t.Errorf("SentBytes %d, want %d", got, want)
	}
	coalesced := 0
	for k, u := range trs[1:] {
		want := 50
		if k == 0 {
			want = 51 // node 2 gets the token too, last
		}
		msgs := newMsgs()
		var got [][]byte
		for len(got) < want {
			n, err := u.Receivers()[0].Recv(msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs[:n] {
				if m.Seg > 0 {
					coalesced++
				}
				m.Datagrams(func(d []byte) { got = append(got, bytes.Clone(d)) })
			}
		}
		for i, g := range got[:50] {
			if !bytes.Equal(g, pkts[i].Data) {
				t.Fatalf("node %d: datagram %d: %d bytes, want %d of %d", k+2, i, len(g), len(pkts[i].Data), i)
			}
		}
		if k == 0 && string(got[50]) != "token" {
			t.Fatalf("node 2: last datagram %q", got[50])
		}
	}
	t.Logf("%d receive slots held a coalesced burst (UDP_GRO)", coalesced)
}

// TestUDPMulticastSegmented: a burst to the group in one segmented message
// reaches every other member whole and in order (root: private namespace).
func TestUDPMulticastSegmented(t *testing.T) {
	trs := map[totem.NodeID]*transport.UDP{}
	transporttest.InNetns(t, func() error {
		peers := map[totem.NodeID]netip.AddrPort{}
		for id := totem.NodeID(1); id <= 3; id++ {
			peers[id] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(id)}), 5405)
		}
		for id, a := range peers {
			u, err := transport.NewUDP(transport.UDPConfig{Bind: a, Peers: peers, TTL: 1, Mcast: netip.MustParseAddrPort("239.192.7.2:5405")})
			if err != nil {
				return err
			}
			trs[id] = u
		}
		return nil
	})
	defer func() {
		for _, u := range trs {
			u.Close()
		}
	}()
	newMsgs := func() []transport.Msg {
		msgs := make([]transport.Msg, 64)
		for i := range msgs {
			msgs[i].Buf = make([]byte, 65536)
		}
		return msgs
	}
	// The first Recv (big slots) turns coalescing on.
	if _, err := trs[1].Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("hello")}}); err != nil {
		t.Fatal(err)
	}
	for id := totem.NodeID(2); id <= 3; id++ {
		if _, err := trs[id].Receivers()[0].Recv(newMsgs()); err != nil {
			t.Fatal(err)
		}
	}
	var pkts []transport.Packet
	for i := range 50 {
		pkts = append(pkts, transport.Packet{To: transport.Broadcast, Data: bytes.Repeat([]byte{byte(i)}, 1400)})
	}
	if n, err := trs[1].Send(pkts); err != nil || n != 50 {
		t.Fatalf("Send: %d, %v", n, err)
	}
	for id := totem.NodeID(2); id <= 3; id++ {
		msgs := newMsgs()
		var got [][]byte
		for len(got) < 50 {
			n, err := trs[id].Receivers()[0].Recv(msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs[:n] {
				m.Datagrams(func(d []byte) { got = append(got, bytes.Clone(d)) })
			}
		}
		for i, g := range got {
			if !bytes.Equal(g, pkts[i].Data) {
				t.Fatalf("node %d: datagram %d: %d bytes, want %d of %d", id, i, len(g), len(pkts[i].Data), i)
			}
		}
	}
}
