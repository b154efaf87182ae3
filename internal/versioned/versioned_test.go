package versioned

import "testing"

func TestRoundTripAndRefusals(t *testing.T) {
	type msg struct{ A int }
	p := Encode(3, msg{A: 7})
	var m msg
	if err := Decode(p, 3, &m); err != nil || m.A != 7 {
		t.Fatalf("round trip: %+v, %v", m, err)
	}
	for _, bad := range [][]byte{nil, {4, '{', '}'}, {3, '{'}} {
		if err := Decode(bad, 3, &m); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
