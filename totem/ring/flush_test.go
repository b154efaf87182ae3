package ring

import (
	"context"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"ringmaster/totem"
)

// stackEvents counts the deliveries made with frame (default: Flush) on
// the delivering goroutine's stack.
type stackEvents struct {
	*recorder
	frame   string
	inFlush atomic.Int32
}

func (e *stackEvents) Deliver(m totem.Message) {
	frame := e.frame
	if frame == "" {
		frame = "ring.(*Ring).Flush"
	}
	if strings.Contains(string(debug.Stack()), frame) {
		e.inFlush.Add(1)
	}
	e.recorder.Deliver(m)
}

// runRing runs a ring with Events of the test's own (startCluster makes
// recorders) until the test ends, then checks Run's result.
func runRing(t *testing.T, cfg Config, ev totem.Events) *Ring {
	t.Helper()
	r, err := New(cfg, ev, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r
}

// TestFlushDeliversInline: once a lone node holds the idle token, a
// SendBatched message is sequenced and delivered within Flush, on the
// caller's goroutine (the point of Flush). Until the token is held,
// Flush may leave it to Run; the test waits, with a deadline, for a
// delivery made from inside Flush.
func TestFlushDeliversInline(t *testing.T) {
	ev := &stackEvents{recorder: newRecorder()}
	r := runRing(t, memConfigs(t, 1, "aes256")[0], ev)
	ev.waitFor(t, 10*time.Second, "a ring of one", func() bool { return len(ev.lastRegular().Members) == 1 })
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ev.inFlush.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery from inside Flush in %d tries", i)
		}
		if err := r.SendBatched(7, uint16(i), totem.Agreed, payloadFor(1, i, 64)); err != nil {
			t.Fatal(err)
		}
		calls, seen := 0, -1
		inlineBefore := ev.inFlush.Load()
		r.Flush(func() {
			calls++
			ev.mu.Lock()
			seen = len(ev.msgs)
			ev.mu.Unlock()
		})
		if calls != 1 {
			t.Fatalf("beforeSend ran %d times", calls)
		}
		if ev.inFlush.Load() > inlineBefore && seen != i+1 {
			t.Fatalf("beforeSend ran before the message delivered inside Flush (saw %d deliveries, want %d)", seen, i+1)
		}
		ev.waitFor(t, 10*time.Second, "the message", func() bool { return len(ev.msgs) == i+1 })
		time.Sleep(20 * time.Millisecond) // the token is held after quiet visits
	}
}

// TestFlushConcurrent: SendBatched and Flush from many goroutines on every
// node, racing Run and each other, deliver every message once and in one
// order everywhere (run under -race by make test).
func TestFlushConcurrent(t *testing.T) {
	c := startCluster(t, memConfigs(t, 3, "aes256"))
	c.waitRing(1, 2, 3)
	const perSender = 150
	var wg sync.WaitGroup
	var befores, flushes atomic.Int64
	flush := func(r *Ring) {
		flushes.Add(1)
		r.Flush(func() { befores.Add(1) })
	}
	for _, id := range c.ids {
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.rings[id]
				for i := range perSender {
					msgID := uint16(g*perSender + i)
					for {
						err := r.SendBatched(7, msgID, totem.Agreed, payloadFor(id, int(msgID), 100))
						if err == nil {
							break
						}
						flush(r)
						time.Sleep(time.Millisecond)
					}
					if i%3 != 2 {
						flush(r) // every third message waits for the next Flush
					}
				}
				flush(r)
			}()
		}
	}
	wg.Wait()
	c.checkOrder(7, 3*2*perSender, 1, 2, 3)
	if n, want := befores.Load(), flushes.Load(); n != want {
		t.Fatalf("beforeSend ran %d times for %d Flush calls", n, want)
	}
}

// TestReaderStepsInline: on a quiet ring, a received message is stepped
// and delivered on the reader's goroutine (stepInline), not handed to Run.
func TestReaderStepsInline(t *testing.T) {
	cfgs := memConfigs(t, 2, "aes256")
	ev := &stackEvents{recorder: newRecorder(), frame: "ring.(*Ring).stepInline"}
	runRing(t, cfgs[1], ev)
	c := startCluster(t, cfgs[:1])
	ev.waitFor(t, 20*time.Second, "a ring of two", func() bool { return len(ev.lastRegular().Members) == 2 })
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ev.inFlush.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery from the reader's goroutine in %d messages", i)
		}
		c.send(1, 7, uint16(i), totem.Agreed, payloadFor(1, i, 64))
		ev.waitFor(t, 10*time.Second, "the message", func() bool { return len(ev.msgs) >= i+1 })
		time.Sleep(5 * time.Millisecond)
	}
}
