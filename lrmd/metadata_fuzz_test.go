package lrmd

import (
	"bytes"
	"testing"
)

// FuzzParseMetaData: agent meta-data XML (what a script agent prints) is
// rejected, never panicked on; what is accepted renders to XML that parses
// again and renders the same (one normalisation, then stable), and the
// accessors and validation the manager runs on it do not panic either.
func FuzzParseMetaData(f *testing.F) {
	md := NewMetaData("Dummy", "a test agent", "", []ParamSpec{
		{Name: "state", Type: "string", Default: "/run/x", Required: true, Short: "state file"},
		{Name: "n", Type: "integer"},
		{Name: "mode", Type: "select", Options: []string{"a", "b"}},
		{Name: "d", Type: "duration"},
		{Name: "b", Type: "boolean"},
	}, []Action{{Name: "start", Timeout: "20s"}, {Name: "monitor", Interval: "10s", Depth: "0"}})
	good, err := md.XML()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`<?xml version="1.0"?><resource-agent name="x"><parameters><parameter name="p" required="1"><content type="select"><option value="v"/></content></parameter></parameters></resource-agent>`))
	f.Add([]byte(`<resource-agent><shortdesc lang="de">x</shortdesc><longdesc>y &amp; z</longdesc></resource-agent>`))
	f.Add([]byte(`<foo/>`))
	f.Add([]byte(`<resource-agent name="a"`))
	f.Add([]byte{0xff, '<'})
	params := map[string]string{"state": "", "n": "x", "mode": "c", "d": "-1s", "b": "maybe", "other": "1"}
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseMetaData(b)
		if err != nil {
			return
		}
		_, _ = md.ShortDesc(), md.LongDesc()
		for i := range md.Parameters {
			_, _ = md.Parameters[i].ShortDesc(), md.Parameters[i].IsRequired()
		}
		_ = md.Validate(params, true)
		_ = md.Validate(params, false)
		_ = md.WithDefaults(params)
		x1, err := md.XML()
		if err != nil {
			t.Fatalf("accepted meta-data does not render: %v", err)
		}
		md2, err := ParseMetaData(x1)
		if err != nil {
			t.Fatalf("rendered meta-data does not parse: %v\n%s", err, x1)
		}
		x2, err := md2.XML()
		if err != nil {
			t.Fatal(err)
		}
		md3, err := ParseMetaData(x2)
		if err != nil {
			t.Fatal(err)
		}
		x3, _ := md3.XML()
		if !bytes.Equal(x2, x3) {
			t.Fatalf("rendering is not stable:\n%s\n---\n%s", x2, x3)
		}
	})
}
