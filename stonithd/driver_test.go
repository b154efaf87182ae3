package stonithd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func staticDevice(t *testing.T, id string, params map[string]string) *Device {
	t.Helper()
	d, err := NewDeviceFromParams(id, "fence_"+id, params, nil, nil, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDriverFencesAndPublishesHistory(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	var published []Entry
	ex := ExecutorFunc(func(ctx context.Context, c Command) CommandResult {
		mu.Lock()
		ran = append(ran, c.Device+" "+c.AgentAction+" "+c.Target)
		mu.Unlock()
		if c.Device == "bad" {
			return CommandResult{RC: 1, Output: "Failed: no route"}
		}
		return CommandResult{RC: 0}
	})
	d := NewDriver(DriverConfig{
		Fencer:   Config{Node: "n1"},
		Executor: ex,
		OnHistory: func(es []Entry) {
			mu.Lock()
			published = append(published, es...)
			mu.Unlock()
		},
	})
	defer d.Close()
	d.SetDevices([]*Device{
		staticDevice(t, "bad", map[string]string{"pcmk_host_list": "n2", "pcmk_reboot_retries": "0", "priority": "9"}),
		staticDevice(t, "good", map[string]string{"pcmk_host_list": "n2"}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.Fence(ctx, Request{Target: "n2", Action: ActionReboot, Client: "test"})
	if err != nil {
		t.Fatalf("Fence: %v (%+v)", err, out)
	}
	if out.Entry.Device != "good" || out.Entry.Result != ResultSuccess || out.Entry.Origin != "n1" {
		t.Errorf("outcome %+v", out.Entry)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 2 || ran[0] != "bad reboot n2" || ran[1] != "good reboot n2" {
		t.Errorf("ran %v", ran)
	}
	if len(published) != 1 || published[0].ID != out.Entry.ID {
		t.Errorf("published %v", published)
	}
	if h := d.History(); len(h) != 1 {
		t.Errorf("history %v", h)
	}
	// A peer's entry merges in once.
	peer := Entry{ID: "n3-1-1", Target: "n4", Action: "off", Result: ResultFailed, Time: time.Now()}
	if got := d.MergeHistory([]Entry{peer, peer}); len(got) != 1 {
		t.Errorf("merged %v", got)
	}
}

func TestDriverTimeoutAndCancel(t *testing.T) {
	started := make(chan CmdID, 4)
	ex := ExecutorFunc(func(ctx context.Context, c Command) CommandResult {
		started <- c.ID
		<-ctx.Done() // hangs until the timeout or an abandon
		return CommandResult{RC: -1, Err: ctx.Err().Error()}
	})
	d := NewDriver(DriverConfig{Fencer: Config{Node: "n1"}, Executor: ex, TickInterval: 10 * time.Millisecond})
	defer d.Close()
	d.SetDevices([]*Device{staticDevice(t, "slow", map[string]string{"pcmk_host_list": "n2,n3", "pcmk_off_timeout": "50ms"})})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.Fence(ctx, Request{Target: "n2", Action: ActionOff})
	if !errors.Is(err, ErrFailed) || out.Entry.Reason != "slow off: timed out" {
		t.Fatalf("Fence = %v, %+v", err, out.Entry)
	}
	// Cancel: the node came back; the waiting caller gets ErrCancelled.
	_, ch, err := d.Submit(Request{Target: "n3", Action: ActionReboot})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	<-started
	if n := d.Cancel("n3", "rejoined cleanly"); n != 1 {
		t.Fatalf("cancelled %d", n)
	}
	select {
	case o := <-ch:
		if !errors.Is(o.Err, ErrCancelled) {
			t.Errorf("outcome %v", o.Err)
		}
	case <-ctx.Done():
		t.Fatal("no outcome after Cancel")
	}
	if p := d.Pending(); len(p) != 0 {
		t.Errorf("pending %v", p)
	}
}

func TestDriverClose(t *testing.T) {
	ex := ExecutorFunc(func(ctx context.Context, c Command) CommandResult {
		<-ctx.Done()
		return CommandResult{RC: -1}
	})
	d := NewDriver(DriverConfig{Executor: ex})
	d.SetDevices([]*Device{staticDevice(t, "x", map[string]string{"pcmk_host_check": "none"})})
	_, ch, err := d.Submit(Request{Target: "n2", Action: ActionOff})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if o := <-ch; !errors.Is(o.Err, ErrClosed) {
		t.Errorf("outcome after Close: %v", o.Err)
	}
	if _, _, err := d.Submit(Request{Target: "n2", Action: ActionOff}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}
