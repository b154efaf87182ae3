package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestLinkHeartbeatRoundTrip(t *testing.T) {
	for _, pong := range []bool{false, true} {
		in := LinkHeartbeat{Link: 7, Stamp: 123456789}
		b := AppendLinkHeartbeat(nil, 3, pong, &in)
		if len(b) != LinkHeartbeatLen {
			t.Fatalf("length %d, want %d", len(b), LinkHeartbeatLen)
		}
		var out LinkHeartbeat
		h, gotPong, err := DecodeLinkHeartbeat(b, &out)
		if err != nil || h.From != 3 || gotPong != pong || out != in {
			t.Fatalf("pong=%v: %v %+v %v %+v", pong, err, h, gotPong, out)
		}
	}
}

func TestLinkHeartbeatRejects(t *testing.T) {
	good := AppendLinkHeartbeat(nil, 3, false, &LinkHeartbeat{Link: 1, Stamp: 5})
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"link 8":    {AppendLinkHeartbeat(nil, 3, false, &LinkHeartbeat{Link: 8, Stamp: 5}), ErrRange},
		"stamp":     {AppendLinkHeartbeat(nil, 3, true, &LinkHeartbeat{Link: 0, Stamp: MaxStamp + 1}), ErrRange},
		"truncated": {good[:len(good)-1], ErrTruncated},
		"trailing":  {append(bytes.Clone(good), 0), ErrMalformed},
		"token":     {AppendToken(nil, 1, sampleToken()), ErrType},
		"node 0":    {AppendLinkHeartbeat(nil, 0, false, &LinkHeartbeat{}), ErrMalformed},
	} {
		var m LinkHeartbeat
		if _, _, err := DecodeLinkHeartbeat(tc.b, &m); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzDecodeLinkHeartbeat(f *testing.F) {
	seedAll(f)
	f.Add(AppendLinkHeartbeat(nil, 3, false, &LinkHeartbeat{Link: 1, Stamp: 5}))
	f.Add(AppendLinkHeartbeat(nil, 2, true, &LinkHeartbeat{Link: 7, Stamp: MaxStamp}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m LinkHeartbeat
		h, pong, err := DecodeLinkHeartbeat(b, &m)
		if err != nil {
			return
		}
		if m.Link >= MaxLinks || m.Stamp > MaxStamp {
			t.Fatalf("accepted out of range %+v", m)
		}
		if out := AppendLinkHeartbeat(nil, h.From, pong, &m); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
	})
}
