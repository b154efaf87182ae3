package ring

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/wire"
)

// These tests attack real ringd processes from the network (issue 11,
// items 2 and 3): replayed datagrams, forged joins with an absurd sequence
// number, datagrams from node IDs and addresses outside the nodelist. Each
// asserts that no ring ID changes and that the rejection is counted.

// tap is a UDP relay between node 3 and nodes 1 and 2 that records what
// node 3 sends. Node 3 is configured with nodes 1 and 2 at relay addresses
// (127.0.0.101, .102) and nodes 1 and 2 with node 3 at one (.103); the
// relay forwards each datagram from the address the receiver has
// configured for its sender, so the address filter sees the real thing.
type tap struct {
	t     *testing.T
	port  int
	socks map[int]*net.UDPConn // 1, 2: node 3's view of nodes 1, 2; 3: nodes 1 and 2's view of node 3
	real  map[int]netip.AddrPort

	mu       sync.Mutex
	capture  bool
	captured map[int][][]byte // by destination node: what node 3 sent it
	wg       sync.WaitGroup
}

func relayAddr(node, port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(100 + node)}), uint16(port))
}

func nodeAddr(node, port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(node)}), uint16(port))
}

// newTap rewrites the cluster's configuration files to route node 3
// through the relay and starts it.
func newTap(t *testing.T, c *clustertest.Cluster) *tap {
	tp := &tap{t: t, port: c.Port, socks: map[int]*net.UDPConn{}, real: map[int]netip.AddrPort{}, captured: map[int][][]byte{}}
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if n.ID == 3 {
			s = strings.Replace(s, `ring0_addr = "127.0.0.1"`, `ring0_addr = "127.0.0.101"`, 1)
			s = strings.Replace(s, `ring0_addr = "127.0.0.2"`, `ring0_addr = "127.0.0.102"`, 1)
		} else {
			s = strings.Replace(s, `ring0_addr = "127.0.0.3"`, `ring0_addr = "127.0.0.103"`, 1)
		}
		if err := os.WriteFile(n.Config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		tp.real[i] = nodeAddr(i, c.Port)
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(relayAddr(i, c.Port)))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadBuffer(8 << 20)
		tp.socks[i] = conn
	}
	for i := 1; i <= 3; i++ {
		tp.wg.Add(1)
		go tp.relay(i)
	}
	t.Cleanup(tp.close)
	return tp
}

// relay forwards what arrives on socket i: on 1 or 2 (from node 3, for
// node i) to node i from socket 3; on 3 (from node 1 or 2, for node 3) to
// node 3 from the sender's relay socket.
func (tp *tap) relay(i int) {
	defer tp.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := tp.socks[i].ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		d := buf[:n]
		if i != 3 {
			if from != tp.real[3] {
				continue
			}
			tp.mu.Lock()
			if tp.capture {
				tp.captured[i] = append(tp.captured[i], append([]byte(nil), d...))
			}
			tp.mu.Unlock()
			_, _ = tp.socks[3].WriteToUDPAddrPort(d, tp.real[i])
			continue
		}
		for src := 1; src <= 2; src++ {
			if from == tp.real[src] {
				_, _ = tp.socks[src].WriteToUDPAddrPort(d, tp.real[3])
			}
		}
	}
}

func (tp *tap) setCapture(on bool) {
	tp.mu.Lock()
	tp.capture = on
	tp.mu.Unlock()
}

// replay sends node 3's captured datagrams to nodes 1 and 2 again, from
// node 3's address as they know it.
func (tp *tap) replay() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	n := 0
	for dst := 1; dst <= 2; dst++ {
		for _, d := range tp.captured[dst] {
			if _, err := tp.socks[3].WriteToUDPAddrPort(d, tp.real[dst]); err == nil {
				n++
			}
		}
	}
	return n
}

func (tp *tap) close() {
	for _, s := range tp.socks {
		s.Close()
	}
	tp.wg.Wait()
}

// ringIDs returns the ring ID every node reports, failing if one does not
// answer.
func ringIDs(t *testing.T, c *clustertest.Cluster, nodes ...int) map[int]string {
	t.Helper()
	ids := map[int]string{}
	for _, i := range nodes {
		st := c.MustStatus(t, i)
		ids[i] = fmt.Sprintf("%d.%d/%s", st.RingID.Rep, st.RingID.Seq, st.State)
	}
	return ids
}

// holdRing polls the nodes for d (while during runs every tick) and fails
// if any ring ID changes from want.
func holdRing(t *testing.T, c *clustertest.Cluster, d, tick time.Duration, want map[int]string, during func()) {
	t.Helper()
	end := time.Now().Add(d)
	next := time.Now()
	for time.Now().Before(end) {
		if during != nil && !time.Now().Before(next) {
			during()
			next = next.Add(tick)
		}
		for i, w := range want {
			if st := c.Status(i); st != nil {
				if got := fmt.Sprintf("%d.%d/%s", st.RingID.Rep, st.RingID.Seq, st.State); got != w {
					for j := range want {
						t.Logf("--- log of n%d (tail)\n%s", j, lastLines(c.Log(j), 30))
					}
					t.Fatalf("n%d: ring %s, was %s", i, got, w)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestReplayDeadNodeDatagrams (issue 11, item 2): datagrams captured off
// the wire while node 3 joined, replayed to the survivors for 3 s (every
// 100 ms) after node 3 died, change no ring ID. Before the envelope had a
// replay window they re-formed the survivors' ring every time.
func TestReplayDeadNodeDatagrams(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, several seconds")
	}
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udpu", Token: 1000, ExtraTotem: "token_coefficient = 0"})
	tp := newTap(t, c)
	c.Start(1)
	c.Start(2)
	c.MustRing(deadline, []int{1, 2}, 1, 2)
	tp.setCapture(true)
	c.Start(3)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	time.Sleep(500 * time.Millisecond) // capture a few rotations too (traffic, not an assertion)
	tp.setCapture(false)
	c.Kill(3)
	c.MustRing(deadline, []int{1, 2}, 1, 2)
	want := ringIDs(t, c, 1, 2)
	holdRing(t, c, time.Second, 0, want, nil) // settled

	sent := 0
	holdRing(t, c, 3*time.Second, 100*time.Millisecond, want, func() { sent += tp.replay() })
	holdRing(t, c, time.Second, 0, want, nil)
	if sent == 0 {
		t.Fatal("nothing captured")
	}
	st := c.MustStatus(t, 1)
	t.Logf("replayed %d datagrams; n1 counters: %v", sent, st.Counters)
	if st.Counters["rejected_replay"] == 0 {
		t.Fatalf("replays not counted: %v", st.Counters)
	}
	if !strings.Contains(c.Log(1), "datagrams rejected") {
		t.Error("no log line about the rejected datagrams")
	}
}

// TestForgedJoinsDropped (issue 11, item 3): with crypto "none", one forged
// join with MaxSeq = 2^64 − 1 used to overflow the ring sequence (every
// node stuck in gather/commit, and the value persisted), and a join from a
// node ID outside the nodelist re-formed the ring. Both are dropped before
// the protocol sees them, as is a join claiming to be node 2 from another
// address; no ring ID changes and the ringseq files stay sane.
func TestForgedJoinsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, several seconds")
	}
	// Node 4 is configured but never started: the forgeries come from
	// its address.
	c := clustertest.New(t, clustertest.Options{Nodes: 4, Transport: "udpu", Token: 1000, ExtraTotem: "token_coefficient = 0"})
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), `crypto_cipher = "aes256"`, `crypto_cipher = "none"`, 1)
		if err := os.WriteFile(n.Config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		c.Start(i)
	}
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	want := ringIDs(t, c, 1, 2, 3)
	holdRing(t, c, time.Second, 0, want, nil)

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(nodeAddr(4, c.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An envelope sealing as sender: with "none" anyone can.
	forge := func(sender totem.NodeID) *crypto.Envelope {
		e, err := crypto.New(crypto.CipherNone, "test", uint32(sender), uint64(time.Now().UnixNano()), nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	type forgery struct {
		name    string
		env     *crypto.Envelope
		from    totem.NodeID
		maxSeq  uint64
		counter string
	}
	forgeries := []forgery{
		{"join with MaxSeq 2^64-1 from listed node 4", forge(4), 4, ^uint64(0), "rejected_out_of_range"},
		{"join with MaxSeq 2^48+1 from listed node 4", forge(4), 4, wire.MaxRingSeq + 1, "rejected_out_of_range"},
		{"join from unlisted node 99", forge(99), 99, 8, "rejected_unknown_node"},
		{"join as node 2 from node 4's address", forge(2), 2, 1 << 20, "rejected_bad_address"},
	}
	send := func() {
		for _, f := range forgeries {
			j := wire.AppendJoin(nil, f.from, &wire.Join{Ring: totem.RingID{Rep: f.from, Seq: 4}, MaxSeq: f.maxSeq,
				Proc: []totem.NodeID{f.from}})
			d := f.env.Seal(nil, 0, j)
			for i := 1; i <= 3; i++ {
				if _, err := conn.WriteToUDPAddrPort(d, nodeAddr(i, c.Port)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	holdRing(t, c, 2*time.Second, 100*time.Millisecond, want, send)
	holdRing(t, c, time.Second, 0, want, nil)

	for i := 1; i <= 3; i++ {
		st := c.MustStatus(t, i)
		for _, f := range forgeries {
			if st.Counters[f.counter] == 0 {
				t.Errorf("n%d: %s: %s not counted: %v", i, f.name, f.counter, st.Counters)
			}
		}
		b, err := os.ReadFile(filepath.Join(c.Node(i).Dir, fmt.Sprintf("ringseq.%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || seq > 1<<20 {
			t.Errorf("n%d: ringseq file holds %q (%v)", i, b, err)
		}
	}
	// The forged node 4 was never let in, and the cluster still works:
	// a real membership change goes through.
	c.Kill(3)
	if _, err := c.WaitRing(deadline, []int{1, 2}, 1, 2); err != nil {
		t.Fatal(errors.Join(err, fmt.Errorf("after the forgeries the ring no longer re-forms")))
	}
}
