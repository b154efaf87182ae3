package stonithd

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEntries() []Entry {
	return []Entry{
		{ID: "n1-1-1", Target: "n2", Action: "reboot", Device: "pdu1,pdu2", Result: ResultSuccess,
			Time: t0.Add(2 * time.Second), Started: t0, Origin: "n1", Executioner: "n1", Client: "controld"},
		{ID: "n3-5-2", Target: "n4", Action: "off", Result: ResultFailed, Time: t0.Add(time.Minute), Started: t0.Add(time.Second),
			Origin: "n3", Executioner: "n3", Reason: "no device can fence n4"},
	}
}

func TestHistoryWireRoundTrip(t *testing.T) {
	in := sampleEntries()
	b, err := EncodeHistory(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n%+v\n%+v", out, in)
	}
	for n := 0; n < len(b); n++ {
		if _, err := DecodeHistory(b[:n]); !errors.Is(err, ErrWire) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
	for _, bad := range [][]byte{append(b, 0), {2, 1, 0, 0}, {1, 9, 0, 0}, {1, 1, 0xff, 0xff}} {
		if _, err := DecodeHistory(bad); !errors.Is(err, ErrWire) {
			t.Errorf("DecodeHistory(%x) = %v", bad, err)
		}
	}
	empty, _ := EncodeHistory(nil)
	if out, err := DecodeHistory(empty); err != nil || len(out) != 0 {
		t.Errorf("empty: %v %v", out, err)
	}
}

func FuzzDecodeHistory(f *testing.F) {
	b, _ := EncodeHistory(sampleEntries())
	f.Add(b)
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeHistory(b)
		if err != nil {
			return
		}
		again, err := EncodeHistory(es)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
	})
}
