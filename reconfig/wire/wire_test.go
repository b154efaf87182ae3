package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"ringmaster/totem"
)

func sampleVote() Vote {
	v := Vote{Initiator: 2, Seq: 7, OK: true, Applied: []string{"totem.token", "node"}, Pending: []string{"totem.netmtu"}}
	for s := Section(1); s < NumSections; s++ {
		v.Digests[s][0] = byte(s)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	p := Prepare{Seq: 3, Ring: totem.RingID{Rep: 1, Seq: 40}, Timeout: 2500 * time.Millisecond}
	if got, err := DecodePrepare(EncodePrepare(p)); err != nil || got != p {
		t.Errorf("prepare: %+v, %v", got, err)
	}
	v := sampleVote()
	if got, err := DecodeVote(EncodeVote(v)); err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("vote: %+v, %v", got, err)
	}
	refused := Vote{Initiator: 1, Seq: 1, Error: "/etc/ringmaster/corosync.toml:7: totem.token: must be at least 10 ms, got 1"}
	if got, err := DecodeVote(EncodeVote(refused)); err != nil || !reflect.DeepEqual(got, refused) {
		t.Errorf("refusal: %+v, %v", got, err)
	}
	a := Abort{Initiator: 3, Seq: 9, Reason: AbortTimeout}
	if got, err := DecodeAbort(EncodeAbort(a)); err != nil || got != a {
		t.Errorf("abort: %+v, %v", got, err)
	}
}

// TestLongErrorClipped: an error beyond MaxError is cut on a rune
// boundary, so the vote still decodes.
func TestLongErrorClipped(t *testing.T) {
	v := Vote{Initiator: 1, Seq: 1, Error: strings.Repeat("é", MaxError)}
	got, err := DecodeVote(EncodeVote(v))
	if err != nil || len(got.Error) > MaxError || !strings.HasPrefix(v.Error, got.Error) {
		t.Fatalf("%d bytes, %v", len(got.Error), err)
	}
}

func TestRefusals(t *testing.T) {
	prep := EncodePrepare(Prepare{Seq: 1, Timeout: time.Second})
	zeroTimeout := bytes.Clone(prep)
	copy(zeroTimeout[21:], []byte{0, 0, 0, 0})
	longTimeout := bytes.Clone(prep)
	copy(longTimeout[21:], []byte{0xff, 0xff, 0xff, 0xff})
	zeroSeq := EncodePrepare(Prepare{Seq: 0, Timeout: time.Second})
	vote := EncodeVote(sampleVote())
	badFlag := bytes.Clone(vote)
	badFlag[13] = 2
	dupSection := bytes.Clone(vote)
	dupSection[15+33] = 1
	abort := EncodeAbort(Abort{Initiator: 1, Seq: 1, Reason: AbortTimeout})
	badReason := bytes.Clone(abort)
	badReason[13] = 9
	for name, tc := range map[string]struct {
		b   []byte
		dec func([]byte) error
	}{
		"prepare short":       {prep[:10], func(b []byte) error { _, err := DecodePrepare(b); return err }},
		"prepare version":     {append([]byte{9}, prep[1:]...), func(b []byte) error { _, err := DecodePrepare(b); return err }},
		"prepare timeout 0":   {zeroTimeout, func(b []byte) error { _, err := DecodePrepare(b); return err }},
		"prepare timeout ∞":   {longTimeout, func(b []byte) error { _, err := DecodePrepare(b); return err }},
		"prepare seq 0":       {zeroSeq, func(b []byte) error { _, err := DecodePrepare(b); return err }},
		"vote truncated":      {vote[:len(vote)-1], func(b []byte) error { _, err := DecodeVote(b); return err }},
		"vote trailing":       {append(bytes.Clone(vote), 0), func(b []byte) error { _, err := DecodeVote(b); return err }},
		"vote flag":           {badFlag, func(b []byte) error { _, err := DecodeVote(b); return err }},
		"vote dup section":    {dupSection, func(b []byte) error { _, err := DecodeVote(b); return err }},
		"vote empty":          {nil, func(b []byte) error { _, err := DecodeVote(b); return err }},
		"abort reason":        {badReason, func(b []byte) error { _, err := DecodeAbort(b); return err }},
		"abort short":         {abort[:5], func(b []byte) error { _, err := DecodeAbort(b); return err }},
		"payload bad json":    {[]byte{ProtoVersion, '{'}, func(b []byte) error { return DecodePayload(b, &Result{}) }},
		"payload bad version": {[]byte{9, '{', '}'}, func(b []byte) error { return DecodePayload(b, &Result{}) }},
	} {
		if err := tc.dec(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// The fuzz targets: a decoder never panics, and what it accepts encodes
// back to the same bytes (nothing is silently dropped or normalised).

func FuzzDecodePrepare(f *testing.F) {
	f.Add(EncodePrepare(Prepare{Seq: 1, Ring: totem.RingID{Rep: 1, Seq: 4}, Timeout: time.Second}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePrepare(b)
		if err == nil && !bytes.Equal(EncodePrepare(p), b) {
			t.Fatalf("%x decoded to %+v, which encodes differently", b, p)
		}
	})
}

func FuzzDecodeVote(f *testing.F) {
	f.Add(EncodeVote(sampleVote()))
	f.Add(EncodeVote(Vote{Initiator: 1, Seq: 1, Error: "n1.toml:3: bad"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVote(b)
		if err == nil && !bytes.Equal(EncodeVote(v), b) {
			t.Fatalf("%x decoded to %+v, which encodes differently", b, v)
		}
	})
}

func FuzzDecodeAbort(f *testing.F) {
	f.Add(EncodeAbort(Abort{Initiator: 1, Seq: 1, Reason: AbortTimeout}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAbort(b)
		if err == nil && !bytes.Equal(EncodeAbort(a), b) {
			t.Fatalf("%x decoded to %+v, which encodes differently", b, a)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(EncodePayload(ReloadRequest{TimeoutMS: 1000}))
	f.Add(EncodePayload(Result{ID: "1.1", Committed: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		_ = DecodePayload(b, &r)
		var q ReloadRequest
		_ = DecodePayload(b, &q)
	})
}
