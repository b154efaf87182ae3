package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// Each decoder gets its own fuzz target: it must never panic, and whatever
// it accepts must encode back to the very same bytes (so nothing is
// silently dropped or misread).

func seedAll(f *testing.F) {
	for _, d := range samples() {
		f.Add(d)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, byte(TypeJoin), 0, 0, 0, 1, 0, 0})
}

func FuzzDecodeHeader(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err == nil && (h.Version != Version || h.From == 0 || len(b) < HeaderLen) {
			t.Fatalf("accepted %+v from %x", h, b)
		}
	})
}

func FuzzDecodeToken(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Token
		h, err := DecodeToken(b, &v)
		if err != nil {
			return
		}
		if v.Rtr == nil {
			v.Rtr = []uint64{}
		}
		if out := AppendToken(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
		if v.Aru > v.Seq {
			t.Fatalf("accepted aru %d above seq %d", v.Aru, v.Seq)
		}
	})
}

func FuzzDecodeMcast(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Mcast
		h, err := DecodeMcast(b, &v)
		if err != nil {
			return
		}
		if out := AppendMcast(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
	})
}

func FuzzDecodeJoin(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Join
		h, err := DecodeJoin(b, &v)
		if err != nil {
			return
		}
		if out := AppendJoin(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
		if !subset(v.Fail, v.Proc) || !contains(v.Proc, h.From) {
			t.Fatalf("accepted inconsistent sets %+v", v)
		}
	})
}

func FuzzDecodeCommit(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Commit
		h, err := DecodeCommit(b, &v)
		if err != nil {
			return
		}
		if len(v.Entries) != len(v.Members) || len(v.Members) == 0 || v.Ring.Rep != v.Members[0] {
			t.Fatalf("accepted inconsistent commit token %+v", v)
		}
		if out := AppendCommit(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
	})
}

func FuzzDecodeMergeDetect(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v MergeDetect
		h, err := DecodeMergeDetect(b, &v)
		if err != nil {
			return
		}
		if out := AppendMergeDetect(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeLeave(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Leave
		h, err := DecodeLeave(b, &v)
		if err != nil {
			return
		}
		if out := AppendLeave(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeHoldCancel(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v HoldCancel
		h, err := DecodeHoldCancel(b, &v)
		if err != nil {
			return
		}
		if out := AppendHoldCancel(nil, h.From, &v); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// TestDecodersReuseStorage: decoding into a value that held a bigger
// message leaves nothing of it behind.
func TestDecodersReuseStorage(t *testing.T) {
	v := *sampleToken()
	v.Rtr = append(v.Rtr, 1, 2, 3)
	small := sampleToken()
	small.Rtr = nil
	if _, err := DecodeToken(AppendToken(nil, 1, small), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Rtr) != 0 {
		t.Fatalf("stale rtr entries %v", v.Rtr)
	}
	small.Rtr = v.Rtr
	if !reflect.DeepEqual(&v, small) {
		t.Fatalf("got %+v", v)
	}
}
