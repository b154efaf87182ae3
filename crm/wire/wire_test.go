package wire

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// samples is one value of every payload type, requests and replies.
func samples() []any {
	return []any{
		&ReplaceConfig{CIB: "<cib/>", Base: &Version{AdminEpoch: 1, Epoch: 2, NumUpdates: 3}},
		&ReplaceConfig{CIB: "<cib/>"},
		&Applied{Version: Version{Epoch: 7}},
		&SetAttribute{Name: "shutdown", Value: "1700000000"},
		&SetAttribute{Name: "x", Delete: true},
		&Cleanup{Resource: "db", Node: "n2"},
		&Status{Node: 1, Name: "n1", Members: []uint32{1, 2}, Synced: true, Quorate: true, DC: "n1", DCID: 1, Enabled: true},
		&Fence{Target: "n2", Action: "reboot", Timeout: time.Minute},
		&FenceReply{OK: true, Device: "fence"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, v := range samples() {
		out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := Decode(Encode(v), out); err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if !reflect.DeepEqual(v, out) {
			t.Fatalf("%T: got %+v, want %+v", v, out, v)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, p := range [][]byte{nil, {}, {2, '{', '}'}, {ProtoVersion}, {ProtoVersion, '{'}, {ProtoVersion, '[', ']'},
		append([]byte{ProtoVersion}, `{"cib":1}`...), append([]byte{ProtoVersion}, `{"timeout":"1s"}`...)} {
		var rc ReplaceConfig
		var f Fence
		if err := Decode(p, &rc); err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v does not wrap ErrMalformed", p, err)
		}
		if err := Decode(p, &f); err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v does not wrap ErrMalformed", p, err)
		}
	}
	var rc ReplaceConfig
	if err := Decode([]byte{2, '{', '}'}, &rc); !errors.Is(err, ErrMalformed) {
		t.Errorf("another version decoded: %v", err)
	}
}

// FuzzDecode feeds arbitrary payloads to the decoder of every request and
// reply type: it must refuse (ErrMalformed) or decode, never panic, and
// what it decodes must encode and decode again to the same value.
func FuzzDecode(f *testing.F) {
	for _, v := range samples() {
		f.Add(Encode(v))
	}
	f.Add([]byte{ProtoVersion, 'n', 'u', 'l', 'l'})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, s := range samples() {
			typ := reflect.TypeOf(s).Elem()
			v := reflect.New(typ).Interface()
			if err := Decode(p, v); err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%T: %v does not wrap ErrMalformed", v, err)
				}
				continue
			}
			again := reflect.New(typ).Interface()
			if err := Decode(Encode(v), again); err != nil {
				t.Fatalf("%T: re-encoding %+v does not decode: %v", v, v, err)
			}
			if !reflect.DeepEqual(v, again) {
				t.Fatalf("%T: %+v came back as %+v", v, v, again)
			}
		}
	})
}
