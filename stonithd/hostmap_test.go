package stonithd

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseHostMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string // node -> port
		err  bool
	}{
		{in: "", want: map[string]string{}},
		{in: "node1:1;node2:2,3", want: map[string]string{"node1": "1", "node2": "2,3"}},
		{in: "node1=1 node2=2\tnode3:3\n", want: map[string]string{"node1": "1", "node2": "2", "node3": "3"}},
		{in: ";;node1:1;;", want: map[string]string{"node1": "1"}},
		{in: `n1:a\:b;n2:c\;d`, want: map[string]string{"n1": "a:b", "n2": "c;d"}},
		{in: "n1:1;N1:2", want: map[string]string{"n1": "2"}},
		{in: "n1:vm:1", want: map[string]string{"n1": "vm:1"}},
		{in: "node1", err: true},
		{in: "node1:", err: true},
		{in: ":1", err: true},
		{in: "n1:1;n2", err: true},
	} {
		m, err := ParseHostMap(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadDevice) {
				t.Errorf("ParseHostMap(%q) = %v, want ErrBadDevice", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHostMap(%q): %v", tc.in, err)
			continue
		}
		got := map[string]string{}
		for _, n := range m.Nodes() {
			got[n], _ = m.Port(n)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseHostMap(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	m, _ := ParseHostMap("Node1:7")
	if p, ok := m.Port("NODE1"); !ok || p != "7" {
		t.Errorf("lookup is not case-insensitive: %q %v", p, ok)
	}
}

func TestParseHostListAndListOutput(t *testing.T) {
	if got, want := ParseHostList("n1, n2;n3\tn1 N2"), []string{"n1", "n2", "n3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseHostList = %v, want %v", got, want)
	}
	out := "vm1,6ef7a8f1-uuid\nvm2,1234\n\nParse error: Ignoring unknown option 'port=x'\nFailed: invalid plug\n"
	if got, want := ParseListOutput(out), []string{"vm1", "6ef7a8f1-uuid", "vm2", "1234"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseListOutput = %v, want %v", got, want)
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"60": time.Minute, "60s": time.Minute, "500ms": 500 * time.Millisecond, "2min": 2 * time.Minute,
		"1h": time.Hour, "1.5s": 1500 * time.Millisecond, "PT30S": 30 * time.Second, " 20sec ": 20 * time.Second,
	} {
		got, err := ParseTimeout(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1s", "1 fortnight", "PTxS", "1e99"} {
		if _, err := ParseTimeout(in); err == nil {
			t.Errorf("ParseTimeout(%q) accepted", in)
		}
	}
}

// FuzzParseHostMap: never panics; what parses renders back (String) to a
// map that parses to the same thing.
func FuzzParseHostMap(f *testing.F) {
	for _, s := range []string{"node1:1;node2:2,3", `a\:b:c\;d`, "n=1 m=2", ";;", "x", ":", "\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseHostMap(s)
		if err != nil {
			return
		}
		again, err := ParseHostMap(m.String())
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", m.String(), s, err)
		}
		if again.String() != m.String() {
			t.Fatalf("round trip: %q -> %q", m.String(), again.String())
		}
		for _, n := range m.Nodes() {
			a, _ := m.Port(n)
			b, ok := again.Port(n)
			if !ok || a != b {
				t.Fatalf("node %q: port %q vs %q", n, a, b)
			}
		}
	})
}

func FuzzParseListOutput(f *testing.F) {
	f.Add("vm1,uuid\nvm2 uuid on\n")
	f.Fuzz(func(t *testing.T, s string) {
		if n := len(ParseListOutput(s)); n > maxHostEntries {
			t.Fatalf("%d entries", n)
		}
	})
}
