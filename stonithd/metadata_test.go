package stonithd

import (
	"errors"
	"os"
	"testing"
)

func TestParseMetadataFenceDummy(t *testing.T) {
	b, err := os.ReadFile("testdata/fence_dummy.xml")
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "fence_dummy" || md.ShortDesc != "Dummy fence agent" {
		t.Errorf("name/shortdesc = %q/%q", md.Name, md.ShortDesc)
	}
	if p := md.Param("status_file"); p == nil || p.Default != "/tmp/fence_dummy.status" || p.Required {
		t.Errorf("status_file = %+v", p)
	}
	if p := md.Param("action"); p == nil || !p.Required {
		t.Errorf("action = %+v", p)
	}
	if p := md.Param("debug"); p == nil || !p.Deprecated {
		t.Errorf("debug = %+v", p)
	}
	if p := md.Param("debug_file"); p == nil || p.Obsoletes != "debug" {
		t.Errorf("debug_file = %+v", p)
	}
	for _, a := range []string{"on", "off", "reboot", "status", "monitor"} {
		if !md.HasAction(a) {
			t.Errorf("no action %s", a)
		}
	}
	if md.HasAction("list") {
		t.Error("fence_dummy does not list")
	}
	if got := md.DefaultHostArgument(); got != "none" {
		t.Errorf("DefaultHostArgument = %q, want none (no port or plug parameter)", got)
	}
	var nilMD *Metadata
	if nilMD.DefaultHostArgument() != "port" || !nilMD.HasAction("list") {
		t.Error("nil meta-data must default to port and claim every action")
	}
}

func TestParseMetadataRejects(t *testing.T) {
	for _, in := range []string{
		"", "not xml", "<resource-agent>", `<resource-agent shortdesc="x"/>`,
		`<other name="x"/>`, `<resource-agent name="x"><parameters><parameter></resource-agent>`,
	} {
		if _, err := ParseMetadata([]byte(in)); !errors.Is(err, ErrBadMetadata) {
			t.Errorf("ParseMetadata(%q) = %v, want ErrBadMetadata", in, err)
		}
	}
	big := make([]byte, MaxMetadataSize+1)
	if _, err := ParseMetadata(big); !errors.Is(err, ErrBadMetadata) {
		t.Errorf("oversized meta-data: %v", err)
	}
}

func FuzzParseMetadata(f *testing.F) {
	if b, err := os.ReadFile("testdata/fence_dummy.xml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<resource-agent name="x"><parameters><parameter name="port" required="1"/></parameters><actions><action name="list"/></actions></resource-agent>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseMetadata(b)
		if err != nil {
			if !errors.Is(err, ErrBadMetadata) {
				t.Fatalf("error does not wrap ErrBadMetadata: %v", err)
			}
			return
		}
		if md.Name == "" {
			t.Fatal("accepted meta-data without a name")
		}
		_ = md.DefaultHostArgument()
	})
}
