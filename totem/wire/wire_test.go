package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"ringmaster/totem"
)

func sampleToken() *Token {
	return &Token{Ring: totem.RingID{Rep: 1, Seq: 8}, TokenSeq: 42, Seq: 100, Aru: 97, AruID: 3,
		Flags: TokenRecovered, Busy: 2, FCC: 17, Backlog: 5, Rtr: []uint64{98, 99}}
}

func sampleMcast() *Mcast {
	return &Mcast{Ring: totem.RingID{Rep: 1, Seq: 8}, Seq: 7, Sender: 2, Guarantee: totem.Safe,
		Flags: McastRecovery, OrigRing: totem.RingID{Rep: 2, Seq: 4}, OrigSeq: 3, Payload: []byte("hello")}
}

func sampleJoin() *Join {
	return &Join{Ring: totem.RingID{Rep: 1, Seq: 8}, MaxSeq: 12, Proc: []totem.NodeID{1, 2, 5}, Fail: []totem.NodeID{5}}
}

func sampleCommit() *Commit {
	return &Commit{Ring: totem.RingID{Rep: 1, Seq: 12}, Round: CommitFill, Members: []totem.NodeID{1, 2},
		Entries: []CommitEntry{{Filled: true, OldRing: totem.RingID{Rep: 1, Seq: 8}, Aru: 5, HighSeq: 9, SafeAru: 4}, {}}}
}

// samples are valid datagrams of every type: round-trip cases and fuzz
// seeds.
func samples() [][]byte {
	return [][]byte{
		AppendToken(nil, 1, sampleToken()),
		AppendMcast(nil, 3, sampleMcast()),
		AppendMcast(nil, 3, &Mcast{Ring: totem.RingID{Rep: 1, Seq: 8}, Seq: 1, Sender: 3}),
		AppendJoin(nil, 2, sampleJoin()),
		AppendCommit(nil, 1, sampleCommit()),
		AppendMergeDetect(nil, 1, &MergeDetect{Ring: totem.RingID{Rep: 1, Seq: 8}, MaxSeq: 8}),
		AppendLeave(nil, 4, &Leave{Ring: totem.RingID{Rep: 1, Seq: 8}, MaxSeq: 9}),
		AppendHoldCancel(nil, 2, &HoldCancel{Ring: totem.RingID{Rep: 1, Seq: 8}}),
	}
}

func TestRoundTrip(t *testing.T) {
	var tok Token
	if h, err := DecodeToken(AppendToken(nil, 1, sampleToken()), &tok); err != nil || h.From != 1 || !reflect.DeepEqual(&tok, sampleToken()) {
		t.Errorf("token: %v %+v", err, tok)
	}
	var m Mcast
	if h, err := DecodeMcast(AppendMcast(nil, 3, sampleMcast()), &m); err != nil || h.From != 3 || !reflect.DeepEqual(&m, sampleMcast()) {
		t.Errorf("mcast: %v %+v", err, m)
	}
	var j Join
	if _, err := DecodeJoin(AppendJoin(nil, 2, sampleJoin()), &j); err != nil || !reflect.DeepEqual(&j, sampleJoin()) {
		t.Errorf("join: %v %+v", err, j)
	}
	var c Commit
	if _, err := DecodeCommit(AppendCommit(nil, 1, sampleCommit()), &c); err != nil || !reflect.DeepEqual(&c, sampleCommit()) {
		t.Errorf("commit: %v %+v", err, c)
	}
	var md MergeDetect
	if _, err := DecodeMergeDetect(samples()[5], &md); err != nil || md.MaxSeq != 8 {
		t.Errorf("merge-detect: %v %+v", err, md)
	}
	var l Leave
	if _, err := DecodeLeave(samples()[6], &l); err != nil || l.MaxSeq != 9 {
		t.Errorf("leave: %v %+v", err, l)
	}
	var hc HoldCancel
	if _, err := DecodeHoldCancel(samples()[7], &hc); err != nil || hc.Ring.Seq != 8 {
		t.Errorf("hold-cancel: %v %+v", err, hc)
	}
}

// TestVersionByte checks that every message type starts with the version
// and is rejected with ErrVersion under another one.
func TestVersionByte(t *testing.T) {
	for _, d := range samples() {
		if d[0] != Version {
			t.Fatalf("%v: first byte %d", Type(d[1]), d[0])
		}
		bad := bytes.Clone(d)
		bad[0] = Version + 1
		if err := decodeAny(bad); !errors.Is(err, ErrVersion) {
			t.Errorf("%v with version %d: %v", Type(d[1]), bad[0], err)
		}
	}
}

func TestRejects(t *testing.T) {
	tokenWith := func(f func(*Token)) []byte { tk := sampleToken(); f(tk); return AppendToken(nil, 1, tk) }
	joinWith := func(f func(*Join)) []byte { j := sampleJoin(); f(j); return AppendJoin(nil, 2, j) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", []byte{Version, byte(TypeToken), 0}, ErrTruncated},
		{"from 0", AppendToken(nil, 0, sampleToken()), ErrMalformed},
		{"unknown type", []byte{Version, 200, 0, 0, 0, 1}, ErrType},
		{"truncated token", AppendToken(nil, 1, sampleToken())[:30], ErrTruncated},
		{"trailing bytes", append(AppendToken(nil, 1, sampleToken()), 0), ErrMalformed},
		{"aru above seq", tokenWith(func(t *Token) { t.Aru = t.Seq + 1 }), ErrMalformed},
		{"unsorted proc", joinWith(func(j *Join) { j.Proc = []totem.NodeID{2, 1} }), ErrMalformed},
		{"duplicate proc", joinWith(func(j *Join) { j.Proc = []totem.NodeID{1, 2, 2} }), ErrMalformed},
		{"node 0 in proc", joinWith(func(j *Join) { j.Proc = []totem.NodeID{0, 2} }), ErrMalformed},
		{"fail outside proc", joinWith(func(j *Join) { j.Fail = []totem.NodeID{7} }), ErrMalformed},
		{"sender outside proc", joinWith(func(j *Join) { j.Proc = []totem.NodeID{1, 5}; j.Fail = nil }), ErrMalformed},
		{"mcast seq 0", AppendMcast(nil, 1, &Mcast{Ring: totem.RingID{Rep: 1}, Sender: 1}), ErrMalformed},
		{"mcast guarantee 7", AppendMcast(nil, 1, &Mcast{Ring: totem.RingID{Rep: 1}, Seq: 1, Sender: 1, Guarantee: 7}), ErrMalformed},
		{"commit rep not lowest", AppendCommit(nil, 1, &Commit{Ring: totem.RingID{Rep: 2, Seq: 4}, Round: CommitFill,
			Members: []totem.NodeID{1, 2}, Entries: make([]CommitEntry, 2)}), ErrMalformed},
		{"wrong decoder", samples()[0], ErrType},
	} {
		var err error
		if tc.name == "wrong decoder" {
			_, err = DecodeJoin(tc.data, &Join{})
		} else {
			err = decodeAny(tc.data)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// decodeAny decodes a datagram of any type.
func decodeAny(b []byte) error {
	h, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	switch h.Type {
	case TypeToken:
		_, err = DecodeToken(b, &Token{})
	case TypeMcast:
		_, err = DecodeMcast(b, &Mcast{})
	case TypeJoin:
		_, err = DecodeJoin(b, &Join{})
	case TypeCommit:
		_, err = DecodeCommit(b, &Commit{})
	case TypeMergeDetect:
		_, err = DecodeMergeDetect(b, &MergeDetect{})
	case TypeLeave:
		_, err = DecodeLeave(b, &Leave{})
	case TypeHoldCancel:
		_, err = DecodeHoldCancel(b, &HoldCancel{})
	default:
		err = ErrType
	}
	return err
}

func BenchmarkTokenEncodeDecode(b *testing.B) {
	tk := sampleToken()
	buf := make([]byte, 0, 256)
	var out Token
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendToken(buf[:0], 1, tk)
		if _, err := DecodeToken(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMcastEncodeDecode(b *testing.B) {
	m := &Mcast{Ring: totem.RingID{Rep: 1, Seq: 8}, Seq: 7, Sender: 2, Payload: make([]byte, 1024)}
	buf := make([]byte, 0, 2048)
	var out Mcast
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		buf = AppendMcast(buf[:0], 1, m)
		if _, err := DecodeMcast(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
