package cpg_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
)

// TestJoinLeaveConfChg follows one group through joins and a leave on
// three nodes: every member sees the same confchgs with corosync's lists
// and reasons.
func TestJoinLeaveConfChg(t *testing.T) {
	tc := newCluster(t, 3, 1)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1)

	a.join("g")
	a.waitConfChg("confchg g members=[1:101] left=[] joined=[1:101/join]")
	a.wait("initial totem conf", func(evs []cpgc.Event) bool {
		return slices.ContainsFunc(evs, func(e cpgc.Event) bool {
			return e.Kind == cpgc.EventTotemConf && slices.Equal(e.Nodes, []totem.NodeID{1, 2, 3})
		})
	})
	b.join("g")
	c.join("g")
	want := "confchg g members=[1:101 2:201 3:301] left=[] joined=[3:301/join]"
	for _, p := range []*proc{a, b, c} {
		p.waitConfChg(want)
	}
	b.waitConfChg("confchg g members=[1:101 2:201] left=[] joined=[2:201/join]")

	ms, err := a.c.Members(ctx(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	if got := renderAddrs(ms); got != "[1:101 2:201 3:301]" {
		t.Fatalf("members: %s", got)
	}
	if id, err := c.c.LocalNodeID(ctx(t)); err != nil || id != 3 {
		t.Fatalf("local node id: %d, %v", id, err)
	}

	if err := b.c.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	left := "confchg g members=[1:101 3:301] left=[2:201/leave] joined=[]"
	for _, p := range []*proc{a, b, c} {
		p.waitConfChg(left)
	}
	// After its leave b gets nothing more of the group.
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, []byte("after")); err != nil {
		t.Fatal(err)
	}
	c.waitMessages(1)
	a.waitMessages(1)
	// The members that stayed saw the same stream from b's join on.
	sa, sc := groupStream(a.events()), groupStream(c.events())
	ia := slices.Index(sa, want)
	ic := slices.Index(sc, want)
	if !slices.Equal(sa[ia:], sc[ic:]) {
		t.Fatalf("streams differ:\na: %v\nc: %v", sa[ia:], sc[ic:])
	}

	// Rejoin works once the leave is done.
	b.join("g")
	b.waitConfChg("confchg g members=[1:101 2:201 3:301] left=[] joined=[2:201/join]")
	// Node 2 delivered "after" before b's rejoin (a and c having it said
	// nothing about node 2): had it gone to b, b would have it by now.
	if n := countMsgs(b.events()); n != 0 {
		t.Fatalf("b got %d messages after leaving:\n%s", n, render(b.events()))
	}
}

func TestGroupsListing(t *testing.T) {
	tc := newCluster(t, 2, 2)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(2, 2)
	a.join("beta")
	b.join("alpha")
	c.join("beta")
	a.waitConfChg("joined=[2:202/join]")
	gs, err := a.c.Groups(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range gs {
		got = append(got, g.Name+renderAddrs(g.Members))
	}
	if want := []string{"alpha[2:201]", "beta[1:101 2:202]"}; !slices.Equal(got, want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// TestProcDown: a client that goes away without leaving leaves with
// PROCDOWN, seen by everyone.
func TestProcDown(t *testing.T) {
	tc := newCluster(t, 3, 3)
	a, b, c, d := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1), tc.proc(3, 2)
	a.join("g")
	b.join("g")
	d.join("g")
	c.join("g")
	a.waitConfChg("joined=[3:301/join]")
	c.c.Close()
	// d shares c's node: once d has seen the leave, c's own executive
	// has delivered it too (a and b seeing it says nothing about node 3).
	for _, p := range []*proc{a, b, d} {
		p.waitConfChg("confchg g members=[1:101 2:201 3:302] left=[3:301/procdown] joined=[]")
	}
	// And the pid may join again at once (the leave has been delivered).
	// The rejoin's confchg reads exactly as c's first join did (d had
	// joined before c): only what comes after the leave counts.
	marks := map[*proc]int{a: a.mark(), b: b.mark(), d: d.mark()}
	c2 := tc.proc(3, 1)
	c2.join("g")
	for _, p := range []*proc{a, b, d, c2} {
		p.waitConfChgSince(marks[p], "confchg g members=[1:101 2:201 3:301 3:302] left=[] joined=[3:301/join]")
	}
}

// TestNodeDown: a crashed node's processes leave with NODEDOWN; the
// survivors get the new totem configuration.
func TestNodeDown(t *testing.T) {
	tc := newCluster(t, 3, 4)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1)
	c2 := tc.proc(3, 2)
	for _, p := range []*proc{a, b, c, c2} {
		p.join("g")
	}
	a.waitConfChg("joined=[3:302/join]")
	tc.Crash(3)
	for _, p := range []*proc{a, b} {
		p.waitConfChg("confchg g members=[1:101 2:201] left=[3:301/nodedown 3:302/nodedown] joined=[]")
		p.wait("totem conf without node 3", func(evs []cpgc.Event) bool {
			return slices.ContainsFunc(evs, func(e cpgc.Event) bool {
				return e.Kind == cpgc.EventTotemConf && slices.Equal(e.Nodes, []totem.NodeID{1, 2})
			})
		})
	}
	c.wait("connection closed by the crash", func([]cpgc.Event) bool {
		select {
		case <-c.c.Done():
			return true
		default:
			return false
		}
	})
	// A restarted node comes back empty; its new process joins.
	tc.restart(3)
	tc.Heal()
	tc.waitSynced()
	n := tc.proc(3, 7)
	n.join("g")
	for _, p := range []*proc{a, b, n} {
		p.waitConfChg("confchg g members=[1:101 2:201 3:307] left=[] joined=[3:307/join]")
	}
}

// TestPartitionMerge: each side sees the other's processes go down, and
// come back with NODEUP on the merge; the same stream afterwards.
func TestPartitionMerge(t *testing.T) {
	tc := newCluster(t, 3, 5)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1)
	for _, p := range []*proc{a, b, c} {
		p.join("g")
	}
	a.waitConfChg("joined=[3:301/join]")
	b.waitConfChg("joined=[3:301/join]")
	if err := tc.Partition([]totem.NodeID{1, 2}, []totem.NodeID{3}); err != nil {
		t.Fatal(err)
	}
	a.waitConfChg("confchg g members=[1:101 2:201] left=[3:301/nodedown] joined=[]")
	b.waitConfChg("confchg g members=[1:101 2:201] left=[3:301/nodedown] joined=[]")
	c.waitConfChg("confchg g members=[3:301] left=[1:101/nodedown 2:201/nodedown] joined=[]")
	tc.waitSynced()
	// Each side keeps working alone.
	if err := c.c.Mcast(ctx(t), cpgc.Agreed, []byte("alone")); err != nil {
		t.Fatal(err)
	}
	c.waitMessages(1)

	tc.Heal()
	a.waitConfChg("confchg g members=[1:101 2:201 3:301] left=[] joined=[3:301/nodeup]")
	b.waitConfChg("confchg g members=[1:101 2:201 3:301] left=[] joined=[3:301/nodeup]")
	c.waitConfChg("confchg g members=[1:101 2:201 3:301] left=[] joined=[1:101/nodeup 2:201/nodeup]")
	tc.waitSynced()
	for i, p := range []*proc{a, b, c} {
		if err := p.c.Mcast(ctx(t), cpgc.Agreed, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	a.waitMessages(3)
	b.waitMessages(3)
	c.waitMessages(4)
	after := func(p *proc) []string {
		s := groupStream(p.events())
		i := slices.IndexFunc(s, func(x string) bool { return strings.Contains(x, "nodeup") })
		return s[i+1:]
	}
	if sa, sb, sc := after(a), after(b), after(c); !slices.Equal(sa, sb) || !slices.Equal(sa, sc) {
		t.Fatalf("streams after the merge differ:\na %v\nb %v\nc %v", sa, sb, sc)
	}
}

// TestSameOrder: many senders on every node at once; every member
// delivers the same messages, confchgs included, in the same order, and
// each sender's messages in send order.
func TestSameOrder(t *testing.T) {
	for _, seed := range []uint64{6, 7} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			tc := newCluster(t, 3, seed)
			var ps []*proc
			for n := totem.NodeID(1); n <= 3; n++ {
				for i := 1; i <= 2; i++ {
					p := tc.proc(n, i)
					p.join("order")
					ps = append(ps, p)
				}
			}
			for _, p := range ps {
				p.waitConfChg("members=[1:101 1:102 2:201 2:202 3:301 3:302]")
			}
			const each = 300
			var wg sync.WaitGroup
			for k, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sendAll(t, p.c, k%2 == 0, each, func(i int) []byte { return fmt.Appendf(nil, "%s#%04d", p.name, i) })
				}()
			}
			// A late joiner mixes a membership event into the stream.
			late := tc.proc(2, 9)
			late.join("order")
			wg.Wait()
			total := each * len(ps)
			for _, p := range ps {
				p.waitMessages(total)
				// late saw its join on node 2; p may be on another
				// node, and the join may come after the last message.
				p.waitConfChg("joined=[2:209/join]")
			}
			ref := groupStream(ps[0].events())
			ref = ref[slices.IndexFunc(ref, func(s string) bool { return strings.Contains(s, "3:302/join") })+1:]
			for _, p := range ps[1:] {
				s := groupStream(p.events())
				s = s[slices.IndexFunc(s, func(s string) bool { return strings.Contains(s, "3:302/join") })+1:]
				if !slices.Equal(ref, s) {
					t.Fatalf("%s and %s delivered different streams", ps[0].name, p.name)
				}
			}
			checkFIFO(t, ps[0].events())
		})
	}
}

// sendAll sends n messages, retrying on try-again after the stream moves.
func sendAll(t *testing.T, c *cpgc.Client, batch bool, n int, msg func(int) []byte) {
	i := 0
	for i < n {
		if batch {
			var ps [][]byte
			for j := i; j < min(n, i+37); j++ {
				ps = append(ps, msg(j))
			}
			sent, err := c.McastBatch(ctx(t), cpgc.Agreed, ps)
			i += sent
			if err != nil && !cpgc.IsTryAgain(err) {
				t.Error(err)
				return
			}
			continue
		}
		err := c.Mcast(ctx(t), cpgc.Agreed, msg(i))
		if err == nil {
			i++
		} else if !cpgc.IsTryAgain(err) {
			t.Error(err)
			return
		}
	}
}

func checkFIFO(t *testing.T, evs []cpgc.Event) {
	t.Helper()
	last := map[string]string{}
	for _, e := range evs {
		if e.Kind != cpgc.EventMessage {
			continue
		}
		from, seq, ok := strings.Cut(string(e.Data), "#")
		if !ok {
			continue
		}
		if seq <= last[from] {
			t.Fatalf("%s: message %s after %s", from, seq, last[from])
		}
		last[from] = seq
	}
}

func TestSafe(t *testing.T) {
	tc := newCluster(t, 3, 8)
	a, b := tc.proc(1, 1), tc.proc(3, 1)
	a.join("s")
	b.join("s")
	if err := a.c.Mcast(ctx(t), cpgc.Safe, []byte("safe")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.McastBatch(ctx(t), cpgc.Safe, [][]byte{[]byte("safe2")}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{a, b} {
		p.waitMessages(2)
		for _, e := range p.events() {
			if e.Kind == cpgc.EventMessage && e.Guarantee != cpgc.Safe {
				t.Fatalf("%s: %s", p.name, renderOne(e))
			}
		}
	}
}

// TestTryAgainDuringSync: while the cluster agrees on the groups after a
// change, joins, leaves and sends answer try-again and change nothing.
func TestTryAgainDuringSync(t *testing.T) {
	tc := newCluster(t, 3, 9)
	a, b := tc.proc(1, 1), tc.proc(2, 1)
	a.join("g")
	b.join("g")
	a.waitConfChg("joined=[2:201/join]")
	fresh := tc.proc(1, 2)

	tc.Freeze()
	if err := tc.Partition([]totem.NodeID{1, 2}, []totem.NodeID{3}); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, []byte("x")); !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("mcast during sync: %v", err)
	}
	if n, err := a.c.McastBatch(ctx(t), cpgc.Agreed, [][]byte{[]byte("y")}); n != 0 || !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("batch during sync: %d, %v", n, err)
	}
	if err := fresh.c.Join(ctx(t), "g"); !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("join during sync: %v", err)
	}
	if err := b.c.Leave(ctx(t)); !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("leave during sync: %v", err)
	}
	tc.Thaw()
	tc.waitSynced()
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, []byte("z")); err != nil {
		t.Fatal(err)
	}
	fresh.join("g")
	b.waitMessages(1)
	if got := renderOne(b.events()[slices.IndexFunc(b.events(), func(e cpgc.Event) bool { return e.Kind == cpgc.EventMessage })]); !strings.Contains(got, `"z"`) {
		t.Fatalf("first message after sync: %s", got)
	}
}

// TestTryAgainQueueFull: a full send queue answers try-again; a batch
// sends a prefix and says how many; nothing is lost or reordered.
func TestTryAgainQueueFull(t *testing.T) {
	tc := newCluster(t, 2, 10)
	a, b := tc.proc(1, 1), tc.proc(2, 1)
	a.join("g")
	b.join("g")
	a.waitConfChg("joined=[2:201/join]")
	n1 := tc.Node(1)

	tc.Freeze()
	n1.SetQueueLimit(n1.Queued() + 3)
	for i := range 3 {
		if err := a.c.Mcast(ctx(t), cpgc.Agreed, fmt.Appendf(nil, "a#%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, []byte("a#9999")); !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("mcast on a full queue: %v", err)
	}
	n1.SetQueueLimit(n1.Queued() + 5)
	var batch [][]byte
	for i := 3; i < 13; i++ {
		batch = append(batch, fmt.Appendf(nil, "a#%04d", i))
	}
	sent, err := a.c.McastBatch(ctx(t), cpgc.Agreed, batch)
	if sent != 5 || !errors.Is(err, cpgc.ErrTryAgain) {
		t.Fatalf("batch on a nearly full queue: sent %d, %v", sent, err)
	}
	n1.SetQueueLimit(1024)
	tc.Thaw()
	if sent2, err := a.c.McastBatch(ctx(t), cpgc.Agreed, batch[sent:]); err != nil || sent2 != 5 {
		t.Fatalf("rest of the batch: %d, %v", sent2, err)
	}
	b.waitMessages(13)
	var got []string
	for _, e := range b.events() {
		if e.Kind == cpgc.EventMessage {
			got = append(got, string(e.Data))
		}
	}
	for i, s := range got {
		if s != fmt.Sprintf("a#%04d", i) {
			t.Fatalf("delivered %v", got)
		}
	}
}

// TestHeldAcrossMerge: messages accepted before a merge and ordered during
// its sync are delivered after the agreed membership, the same everywhere.
func TestHeldAcrossMerge(t *testing.T) {
	tc := newCluster(t, 3, 11)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1)
	for _, p := range []*proc{a, b, c} {
		p.join("g")
	}
	a.waitConfChg("joined=[3:301/join]")
	if err := tc.Partition([]totem.NodeID{1, 2}, []totem.NodeID{3}); err != nil {
		t.Fatal(err)
	}
	tc.waitSynced()
	a.waitConfChg("left=[3:301/nodedown]")
	c.waitConfChg("left=[1:101/nodedown 2:201/nodedown]")

	tc.Freeze()
	for i := range 3 {
		if err := a.c.Mcast(ctx(t), cpgc.Agreed, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := c.c.Mcast(ctx(t), cpgc.Agreed, fmt.Appendf(nil, "c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tc.Heal()
	tc.Thaw()
	tc.waitSynced()
	for _, p := range []*proc{a, b, c} {
		p.waitMessages(6)
	}
	msgsAfterNodeUp := func(p *proc) []string {
		s := groupStream(p.events())
		i := slices.IndexFunc(s, func(x string) bool { return strings.Contains(x, "nodeup") })
		if i < 0 {
			t.Fatalf("%s saw no nodeup:\n%s", p.name, render(p.events()))
		}
		return s[i+1:]
	}
	sa, sb, sc := msgsAfterNodeUp(a), msgsAfterNodeUp(b), msgsAfterNodeUp(c)
	if len(sa) != 6 || !slices.Equal(sa, sb) || !slices.Equal(sa, sc) {
		t.Fatalf("held messages differ:\na %v\nb %v\nc %v", sa, sb, sc)
	}
}

// TestSyncCutShort: a message ordered during a sync that another change
// interrupts is delivered in the view it was ordered in (without the
// departed node), never to the node that was away.
func TestSyncCutShort(t *testing.T) {
	tc := newCluster(t, 3, 12)
	a, b, c := tc.proc(1, 1), tc.proc(2, 1), tc.proc(3, 1)
	for _, p := range []*proc{a, b, c} {
		p.join("g")
	}
	a.waitConfChg("joined=[3:301/join]")
	b.waitConfChg("joined=[3:301/join]")

	tc.Freeze()
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, []byte("m1")); err != nil {
		t.Fatal(err)
	}
	if err := tc.Partition([]totem.NodeID{1, 2}, []totem.NodeID{3}); err != nil {
		t.Fatal(err)
	}
	if n := tc.StepFrom(1, 1); n != 1 {
		t.Fatalf("stepped %d", n)
	}
	tc.Heal()
	tc.Thaw()
	tc.waitSynced()
	for _, p := range []*proc{a, b} {
		p.waitMessages(1)
		p.waitConfChg("3:301/nodeup")
		s := groupStream(p.events())
		i := slices.IndexFunc(s, func(x string) bool { return strings.Contains(x, "3:301/nodedown") })
		j := slices.IndexFunc(s, func(x string) bool { return strings.Contains(x, `"m1"`) })
		k := slices.IndexFunc(s, func(x string) bool { return strings.Contains(x, "3:301/nodeup") })
		if !(i >= 0 && i < j && j < k) {
			t.Fatalf("%s: want nodedown, m1, nodeup in order:\n%s", p.name, render(p.events()))
		}
	}
	c.waitConfChg("joined=[1:101/nodeup 2:201/nodeup]")
	if n := countMsgs(c.events()); n != 0 {
		t.Fatalf("c got m1 although it was away:\n%s", render(c.events()))
	}
}

func TestGroupNameLimits(t *testing.T) {
	tc := newCluster(t, 1, 13)
	a := tc.proc(1, 1)
	long := strings.Repeat("n", wire.MaxGroupName)
	a.join(long)
	a.waitConfChg("confchg " + long + " members=[1:101]")
	b := tc.proc(1, 2)
	if err := b.c.Join(ctx(t), long+"x"); !errors.Is(err, cpgc.ErrInvalid) {
		t.Fatalf("129-byte name: %v", err)
	}
	if err := b.c.Join(ctx(t), ""); !errors.Is(err, cpgc.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	// The daemon checks too, whatever a client sends.
	raw, err := ipc.Dial(ctx(t), tc.sockets[1])
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	bad := append([]byte{wire.Version, 129}, bytes.Repeat([]byte("n"), 129)...)
	bad = append(bad, 0, 0, 0, 1)
	if _, err := raw.Call(ctx(t), 1, wire.ReqJoin, bad); !errors.Is(err, ipc.ErrInvalid) {
		t.Fatalf("raw 129-byte join: %v", err)
	}
	if err := b.c.Join(ctx(t), long); !errors.Is(err, cpgc.ErrExists) && err != nil {
		t.Fatalf("second member: %v", err)
	}
	// Same pid twice in one group on one node: refused.
	c := tc.proc(1, 1)
	if err := c.c.Join(ctx(t), long); !errors.Is(err, cpgc.ErrExists) {
		t.Fatalf("duplicate pid: %v", err)
	}
	// A second join on the same client: refused.
	if err := a.c.Join(ctx(t), "other"); !errors.Is(err, cpgc.ErrExists) {
		t.Fatalf("second join: %v", err)
	}
	// Mcast outside a group.
	d := tc.proc(1, 3)
	if err := d.c.Mcast(ctx(t), cpgc.Agreed, nil); !errors.Is(err, cpgc.ErrNotJoined) {
		t.Fatalf("mcast unjoined: %v", err)
	}
	if err := d.c.Leave(ctx(t)); !errors.Is(err, cpgc.ErrNotJoined) {
		t.Fatalf("leave unjoined: %v", err)
	}
}

// TestLargeMessages: a message of the maximum size is delivered whole on
// every node; one byte more is refused.
func TestLargeMessages(t *testing.T) {
	tc := newCluster(t, 3, 14)
	a, b := tc.proc(1, 1), tc.proc(3, 1)
	a.join("big")
	b.join("big")
	a.waitConfChg("joined=[3:301/join]")
	big := make([]byte, cpgc.MaxMessageSize)
	for i := range big {
		big[i] = byte(i * 7)
	}
	mib := big[:1<<20-1<<10]
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, big); err != nil {
		t.Fatal(err)
	}
	if n, err := a.c.McastBatch(ctx(t), cpgc.Agreed, [][]byte{mib, big[:10], mib}); err != nil || n != 3 {
		t.Fatalf("batch of large messages: %d, %v", n, err)
	}
	if err := a.c.Mcast(ctx(t), cpgc.Agreed, make([]byte, cpgc.MaxMessageSize+1)); !errors.Is(err, cpgc.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for _, p := range []*proc{a, b} {
		p.waitMessages(4)
		var got [][]byte
		for _, e := range p.events() {
			if e.Kind == cpgc.EventMessage {
				got = append(got, e.Data)
			}
		}
		if !bytes.Equal(got[0], big) || !bytes.Equal(got[1], mib) || !bytes.Equal(got[2], big[:10]) || !bytes.Equal(got[3], mib) {
			t.Fatalf("%s: large messages corrupted", p.name)
		}
	}
}
