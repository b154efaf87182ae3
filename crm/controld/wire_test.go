package controld

import (
	"reflect"
	"testing"

	"ringmaster/totem"
)

func TestWireRoundTrip(t *testing.T) {
	ring := totem.RingID{Rep: 3, Seq: 1 << 40}
	s := &syncMsg{Ring: ring, Version: Version{1, 2, 3}, Digest: []byte{1, 2}, Config: []byte("<cib/>"), Own: []byte("<status/>"),
		Others: []nodeGen{{Node: 7, Gen: 9, State: []byte("x")}}}
	if got, err := decodeSync(s.encode()); err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("sync: %v %+v", err, got)
	}
	c := &configMsg{Req: 5, Base: Version{0, 4, 0}, Unconditional: true, CIB: []byte("<cib/>")}
	if got, err := decodeConfig(c.encode()); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("config: %v %+v", err, got)
	}
	a := &actionMsg{Ring: ring, Key: "1:2:0:dc1-4", Target: 2, Task: "start", OpKey: "r_start_0", Resource: "r", Class: "ocf",
		Provider: "heartbeat", Type: "Dummy", Node: "node2", IntervalMS: 10000, Meta: map[string]string{"timeout": "20000"}, Params: map[string]string{"ip": "10.0.0.1"}}
	if got, err := decodeAction(a.encode()); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("action: %v %+v", err, got)
	}
	r := &resultMsg{Resource: "r", Class: "ocf", Task: "monitor", IntervalMS: 10000, RC: 7, OpStatus: 0, CallID: 12, TargetRC: 0,
		Digest: "abc", Key: "k", Time: 1700000000, ExecMS: 5, Reason: "gone", Cancelled: true}
	if got, err := decodeResult(r.encode()); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("result: %v %+v", err, got)
	}
	f := &fenceMsg{Key: "k", Target: 4, Uname: "node4", Action: "reboot", OK: true, Reason: "", Time: 5}
	if got, err := decodeFence(f.encode()); err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("fence: %v %+v", err, got)
	}
	at := &attrMsg{Name: "standby", Value: "on"}
	if got, err := decodeAttr(at.encode()); err != nil || !reflect.DeepEqual(got, at) {
		t.Fatalf("attr: %v %+v", err, got)
	}
	cl := &cleanupMsg{Resource: "r", Node: 3, FailcountOnly: true}
	if got, err := decodeCleanup(cl.encode()); err != nil || !reflect.DeepEqual(got, cl) {
		t.Fatalf("cleanup: %v %+v", err, got)
	}
	// Truncations and a wrong version are errors, never panics.
	p := a.encode()
	for i := 0; i < len(p); i++ {
		if _, err := decodeAction(p[:i]); err == nil {
			t.Fatalf("truncated action of %d bytes decoded", i)
		}
	}
	p[0] = 2
	if _, err := decodeAction(p); err == nil {
		t.Fatal("version 2 decoded")
	}
}

func fuzzSeeds(f *testing.F) {
	ring := totem.RingID{Rep: 1, Seq: 4}
	f.Add((&syncMsg{Ring: ring, Own: []byte("<status/>")}).encode())
	f.Add((&configMsg{CIB: []byte("<cib/>")}).encode())
	f.Add((&actionMsg{Ring: ring, Meta: map[string]string{"a": "b"}}).encode())
	f.Add((&resultMsg{Resource: "r"}).encode())
	f.Add((&fenceMsg{Target: 1}).encode())
	f.Add((&attrMsg{Name: "x"}).encode())
	f.Add((&cleanupMsg{Resource: "r"}).encode())
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
}

func FuzzDecodeSync(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		if m, err := decodeSync(p); err == nil {
			if _, err := decodeSync(m.encode()); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = decodeConfig(p) })
}

func FuzzDecodeAction(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		if m, err := decodeAction(p); err == nil {
			if _, err := decodeAction(m.encode()); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = decodeResult(p) })
}

func FuzzDecodeFence(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = decodeFence(p) })
}

func FuzzDecodeAttr(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = decodeAttr(p) })
}

func FuzzDecodeCleanup(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = decodeCleanup(p) })
}

// FuzzDeliver feeds arbitrary messages of every kind to a controller:
// nothing may panic.
func FuzzDeliver(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := New(Config{Node: 1}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		c.ConfChange(testNow, totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: []totem.NodeID{1, 2}, Joined: []totem.NodeID{1, 2}})
		for id := uint16(1); id <= 8; id++ {
			c.Deliver(testNow, Message{Sender: 2, ID: id, Payload: p})
		}
		c.SyncDone(testNow)
		for id := uint16(1); id <= 8; id++ {
			c.Deliver(testNow, Message{Sender: 2, ID: id, Payload: p})
		}
		for c.HasReady() {
			c.Ready()
		}
	})
}
