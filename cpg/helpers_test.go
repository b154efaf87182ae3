package cpg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/cpg"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// waitTimeout bounds every condition wait; tests never sleep.
const waitTimeout = 20 * time.Second

// cluster is an exectest cluster with a cpg service and a socket per node.
type cluster struct {
	*exectest.Cluster
	t       *testing.T
	sockets map[totem.NodeID]string
	svcs    map[totem.NodeID]*cpg.Service
	mu      sync.Mutex
	stop    func()
}

func newCluster(t *testing.T, nodes int, seed uint64) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "cpgt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tc := &cluster{t: t, sockets: map[totem.NodeID]string{}, svcs: map[totem.NodeID]*cpg.Service{}}
	c, err := exectest.New(exectest.Options{
		Nodes: nodes,
		Seed:  seed,
		Services: func(id totem.NodeID) []exec.Service {
			s := cpg.New()
			tc.mu.Lock()
			tc.svcs[id] = s
			tc.mu.Unlock()
			return []exec.Service{s}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tc.Cluster = c
	for i := 1; i <= nodes; i++ {
		tc.listen(totem.NodeID(i), filepath.Join(dir, fmt.Sprintf("n%d.sock", i)))
	}
	tc.stop = c.Run()
	t.Cleanup(func() {
		tc.stop()
		c.Close()
	})
	tc.waitSynced()
	return tc
}

func (tc *cluster) listen(id totem.NodeID, path string) {
	tc.t.Helper()
	if _, err := tc.Node(id).Listen(path, ipc.Options{}); err != nil {
		tc.t.Fatal(err)
	}
	tc.sockets[id] = path
}

func (tc *cluster) restart(id totem.NodeID) {
	tc.t.Helper()
	if _, err := tc.Restart(id); err != nil {
		tc.t.Fatal(err)
	}
	path := tc.sockets[id]
	os.Remove(path)
	tc.listen(id, path)
}

func (tc *cluster) waitSynced() {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tc.WaitSynced(ctx); err != nil {
		tc.t.Fatal(err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// proc is a client whose events are recorded for condition waits.
type proc struct {
	t    *testing.T
	name string
	node totem.NodeID
	pid  uint32
	c    *cpgc.Client

	mu      sync.Mutex
	evs     []cpgc.Event
	changed chan struct{}
	closed  bool
}

func dialProc(t *testing.T, socket string, node totem.NodeID, pid uint32) *proc {
	t.Helper()
	c, err := cpgc.DialOptions(ctx(t), socket, cpgc.Options{PID: pid})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: fmt.Sprintf("%d:%d", node, pid), node: node, pid: pid, c: c, changed: make(chan struct{})}
	go func() {
		for e := range c.Events() {
			p.mu.Lock()
			p.evs = append(p.evs, e)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.closed = true
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

// proc on node id of the cluster, with pid 100*id+n.
func (tc *cluster) proc(id totem.NodeID, n int) *proc {
	return dialProc(tc.t, tc.sockets[id], id, uint32(100*int(id)+n))
}

// join joins group and waits for the confchg of this join (a rejoin's
// wait ignores the confchg of an earlier join).
func (p *proc) join(group string) {
	p.t.Helper()
	from := p.mark()
	if err := p.c.Join(ctx(p.t), group); err != nil {
		p.t.Fatalf("%s join: %v", p.name, err)
	}
	p.wait("own join", func(evs []cpgc.Event) bool {
		for _, e := range evs[from:] {
			if e.Kind == cpgc.EventConfChg && hasAddr(e.Joined, p.node, p.pid) {
				return true
			}
		}
		return false
	})
}

// mark is the number of events recorded so far: a wait from a mark
// (waitConfChgSince) is not satisfied by what came before it.
func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.evs)
}

func (p *proc) events() []cpgc.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]cpgc.Event(nil), p.evs...)
}

// wait blocks until cond holds on the events so far.
func (p *proc) wait(what string, cond func(evs []cpgc.Event) bool) {
	p.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok := cond(p.evs)
		ch, closed := p.changed, p.closed
		p.mu.Unlock()
		if ok {
			return
		}
		if closed {
			p.t.Fatalf("%s: stream ended waiting for %s (err %v); events:\n%s", p.name, what, p.c.Err(), render(p.events()))
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: timed out waiting for %s; events:\n%s", p.name, what, render(p.events()))
		}
	}
}

// waitConfChg waits for a confchg whose rendering contains want, among
// all the events so far: use waitConfChgSince where an earlier confchg
// could match too.
func (p *proc) waitConfChg(want string) {
	p.t.Helper()
	p.waitConfChgSince(0, want)
}

// waitConfChgSince waits for a confchg whose rendering contains want
// among the events from mark on.
func (p *proc) waitConfChgSince(mark int, want string) {
	p.t.Helper()
	what := "confchg " + want
	if mark > 0 {
		what += fmt.Sprintf(" after event %d", mark)
	}
	p.wait(what, func(evs []cpgc.Event) bool {
		for _, e := range evs[mark:] {
			if e.Kind == cpgc.EventConfChg && strings.Contains(renderOne(e), want) {
				return true
			}
		}
		return false
	})
}

func (p *proc) waitMessages(n int) {
	p.t.Helper()
	p.wait(fmt.Sprintf("%d messages", n), func(evs []cpgc.Event) bool { return countMsgs(evs) >= n })
}

func countMsgs(evs []cpgc.Event) int {
	n := 0
	for _, e := range evs {
		if e.Kind == cpgc.EventMessage {
			n++
		}
	}
	return n
}

func hasAddr(as []cpgc.Address, node totem.NodeID, pid uint32) bool {
	for _, a := range as {
		if a.NodeID == node && a.PID == pid {
			return true
		}
	}
	return false
}

func renderAddrs(as []cpgc.Address) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, a := range as {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", a.NodeID, a.PID)
		if a.Reason != 0 {
			fmt.Fprintf(&b, "/%s", a.Reason)
		}
	}
	b.WriteByte(']')
	return b.String()
}

// renderOne prints an event for comparisons and failure messages.
func renderOne(e cpgc.Event) string {
	switch e.Kind {
	case cpgc.EventMessage:
		return fmt.Sprintf("msg %s from %d:%d %s %q", e.Group, e.Sender.NodeID, e.Sender.PID, e.Guarantee, abbreviate(e.Data))
	case cpgc.EventConfChg:
		return fmt.Sprintf("confchg %s members=%s left=%s joined=%s", e.Group, renderAddrs(e.Members), renderAddrs(e.Left), renderAddrs(e.Joined))
	case cpgc.EventTotemConf:
		return fmt.Sprintf("totem ring=%s nodes=%v", e.Ring, e.Nodes)
	}
	return e.Kind.String()
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func render(evs []cpgc.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("  ")
		b.WriteString(renderOne(e))
		b.WriteByte('\n')
	}
	return b.String()
}

// groupStream is the part of a stream that must match across nodes: the
// group's messages and confchgs (totem events depend on the node's own
// ring history).
func groupStream(evs []cpgc.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind != cpgc.EventTotemConf {
			out = append(out, renderOne(e))
		}
	}
	return out
}
