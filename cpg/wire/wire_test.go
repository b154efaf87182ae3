package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"ringmaster/totem"
)

func TestRecordRoundTrip(t *testing.T) {
	b := AppendRecord(nil, totem.Safe, 0, 0, []byte("grp"), []byte("hello"))
	StampRecord(b, 7, 1234)
	r, err := ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Guarantee != totem.Safe || r.NodeID != 7 || r.PID != 1234 || string(r.Name) != "grp" || string(r.Data) != "hello" {
		t.Fatalf("%+v", r)
	}
	if len(b) != RecordSize(3, 5) {
		t.Fatalf("size %d", len(b))
	}
}

func TestRecordRejects(t *testing.T) {
	good := AppendRecord(nil, totem.Agreed, 1, 2, []byte("g"), []byte("x"))
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":     {good[:5], ErrTruncated},
		"version":   {append([]byte{9}, good[1:]...), ErrVersion},
		"guarantee": {append([]byte{Version, 7}, good[2:]...), ErrGuarantee},
		"no name":   {append([]byte{Version, 0, 0}, good[3:]...), ErrName},
		"name long": {append([]byte{Version, 0, 200}, good[3:]...), ErrName},
		"name cut":  {append([]byte{Version, 0, 100}, good[3:]...), ErrTruncated},
		"too large": {AppendRecord(nil, totem.Agreed, 1, 2, []byte("g"), make([]byte, MaxData+1)), ErrTooLarge},
	} {
		if _, err := ParseRecord(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := ParseRecord(AppendRecord(nil, totem.Agreed, 1, 2, []byte(strings.Repeat("g", MaxGroupName)), make([]byte, MaxData))); err != nil {
		t.Fatalf("largest record: %v", err)
	}
	if RecordSize(MaxGroupName, MaxData) != totem.MaxMessageSize {
		t.Fatalf("the largest record must fit one ring message")
	}
}

func TestBatch(t *testing.T) {
	b := AppendBatchHeader(nil, 3)
	for _, p := range []string{"a", "", "ccc"} {
		b = AppendBatchRecord(b, totem.Agreed, 0, 0, []byte("g"), []byte(p))
	}
	it, err := NewBatchIter(b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		rec, ok := it.Next()
		if !ok {
			break
		}
		r, err := ParseRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(r.Data))
	}
	if it.Err() != nil || !reflect.DeepEqual(got, []string{"a", "", "ccc"}) {
		t.Fatalf("%v %v", got, it.Err())
	}
	// A count that promises more than there is.
	b[7] = 4
	it, _ = NewBatchIter(b)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if !errors.Is(it.Err(), ErrTruncated) {
		t.Fatalf("short batch: %v", it.Err())
	}
	// Trailing bytes after the announced records.
	b[7] = 2
	it, _ = NewBatchIter(b)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if !errors.Is(it.Err(), ErrTrailing) {
		t.Fatalf("long batch: %v", it.Err())
	}
}

func TestSmallMessagesRoundTrip(t *testing.T) {
	as := []Address{{1, 10, 0}, {2, 20, ReasonNodeUp}}
	jr := JoinReq{Name: "g", PID: 5}
	if got, err := ParseJoinReq(AppendJoinReq(nil, jr)); err != nil || got != jr {
		t.Fatalf("join req %+v %v", got, err)
	}
	if got, err := ParseName(AppendName(nil, "name")); err != nil || got != "name" {
		t.Fatalf("name %q %v", got, err)
	}
	if got, err := ParseAddrList(AppendAddrList(nil, as)); err != nil || !reflect.DeepEqual(got, as) {
		t.Fatalf("addrs %v %v", got, err)
	}
	pm := ProcMsg{Reason: ReasonProcDown, Name: "g", PID: 9}
	if got, err := ParseProcMsg(AppendProcMsg(nil, pm)); err != nil || got != pm {
		t.Fatalf("proc %+v %v", got, err)
	}
	jl := JoinList{Ring: totem.RingID{Rep: 1, Seq: 8}, Entries: []JoinEntry{{"a", 1}, {"b", 2}}}
	if got, err := ParseJoinList(AppendJoinList(nil, jl)); err != nil || !reflect.DeepEqual(got, jl) {
		t.Fatalf("joinlist %+v %v", got, err)
	}
	cc := ConfChg{Name: "g", Members: as, Left: as[:1], Joined: as[1:]}
	if got, err := ParseConfChg(AppendConfChg(nil, cc)); err != nil || !reflect.DeepEqual(got, cc) {
		t.Fatalf("confchg %+v %v", got, err)
	}
	tc := TotemConf{Ring: totem.RingID{Rep: 2, Seq: 12}, Members: []totem.NodeID{2, 3}}
	if got, err := ParseTotemConf(AppendTotemConf(nil, tc)); err != nil || !reflect.DeepEqual(got, tc) {
		t.Fatalf("totem %+v %v", got, err)
	}
	gs := []Group{{Name: "a", Members: as}, {Name: "b", Members: as[1:]}}
	if got, err := ParseGroups(AppendGroups(nil, gs)); err != nil || !reflect.DeepEqual(got, gs) {
		t.Fatalf("groups %+v %v", got, err)
	}
	br := BatchReply{Sent: 3, Code: 2, Msg: "try again"}
	if got, err := ParseBatchReply(AppendBatchReply(nil, br)); err != nil || got != br {
		t.Fatalf("batch reply %+v %v", got, err)
	}
	if got, err := ParseU32(AppendU32(nil, 77)); err != nil || got != 77 {
		t.Fatalf("u32 %d %v", got, err)
	}
	// Trailing garbage is refused everywhere.
	if _, err := ParseProcMsg(append(AppendProcMsg(nil, pm), 0)); !errors.Is(err, ErrTrailing) {
		t.Fatalf("trailing: %v", err)
	}
	// A forged count cannot make the decoder allocate.
	forged := []byte{Version, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}
	if _, err := ParseJoinList(forged); !errors.Is(err, ErrTruncated) {
		t.Fatalf("forged count: %v", err)
	}
}

// Fuzz: no decoder panics, and whatever decodes re-encodes to the same
// bytes (so the formats have one encoding).

func FuzzParseRecord(f *testing.F) {
	f.Add(AppendRecord(nil, totem.Agreed, 1, 2, []byte("g"), []byte("data")))
	f.Add([]byte{Version, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		if b[3] == 0 && !bytes.Equal(AppendRecord(nil, r.Guarantee, r.NodeID, r.PID, r.Name, r.Data), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzBatch(f *testing.F) {
	b := AppendBatchHeader(nil, 2)
	b = AppendBatchRecord(b, totem.Agreed, 0, 0, []byte("g"), []byte("1"))
	b = AppendBatchRecord(b, totem.Safe, 0, 0, []byte("g"), []byte("22"))
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := NewBatchIter(b)
		if err != nil {
			return
		}
		n := 0
		for {
			rec, ok := it.Next()
			if !ok {
				break
			}
			n++
			_, _ = ParseRecord(rec)
		}
		if n*4 > len(b) {
			t.Fatalf("%d records out of %d bytes", n, len(b))
		}
	})
}

func FuzzParseSmall(f *testing.F) {
	as := []Address{{1, 10, 0}, {2, 20, ReasonNodeUp}}
	f.Add(uint8(0), AppendJoinReq(nil, JoinReq{Name: "g", PID: 5}))
	f.Add(uint8(1), AppendProcMsg(nil, ProcMsg{Reason: ReasonLeave, Name: "g", PID: 9}))
	f.Add(uint8(2), AppendJoinList(nil, JoinList{Ring: totem.RingID{Rep: 1, Seq: 8}, Entries: []JoinEntry{{"a", 1}}}))
	f.Add(uint8(3), AppendConfChg(nil, ConfChg{Name: "g", Members: as, Left: as[:1]}))
	f.Add(uint8(4), AppendTotemConf(nil, TotemConf{Ring: totem.RingID{Rep: 2, Seq: 12}, Members: []totem.NodeID{2, 3}}))
	f.Add(uint8(5), AppendGroups(nil, []Group{{Name: "a", Members: as}}))
	f.Add(uint8(6), AppendAddrList(nil, as))
	f.Add(uint8(7), AppendName(nil, "n"))
	f.Add(uint8(8), AppendBatchReply(nil, BatchReply{Sent: 1, Code: 2, Msg: "m"}))
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var re []byte
		switch kind % 9 {
		case 0:
			if v, err := ParseJoinReq(b); err == nil {
				re = AppendJoinReq(nil, v)
			}
		case 1:
			if v, err := ParseProcMsg(b); err == nil {
				re = AppendProcMsg(nil, v)
			}
		case 2:
			if v, err := ParseJoinList(b); err == nil {
				re = AppendJoinList(nil, v)
			}
		case 3:
			if v, err := ParseConfChg(b); err == nil {
				re = AppendConfChg(nil, v)
			}
		case 4:
			if v, err := ParseTotemConf(b); err == nil {
				re = AppendTotemConf(nil, v)
			}
		case 5:
			if v, err := ParseGroups(b); err == nil {
				re = AppendGroups(nil, v)
			}
		case 6:
			if v, err := ParseAddrList(b); err == nil {
				re = AppendAddrList(nil, v)
			}
		case 7:
			if v, err := ParseName(b); err == nil {
				re = AppendName(nil, v)
			}
		case 8:
			if v, err := ParseBatchReply(b); err == nil && v.Code != 0 {
				re = AppendBatchReply(nil, v)
			} else if err == nil {
				return // a code of 0 with a message is not canonical
			}
		}
		if re != nil && !bytes.Equal(re, b) {
			t.Fatalf("kind %d: re-encoding %x differs from %x", kind%9, re, b)
		}
	})
}
