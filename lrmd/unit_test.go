package lrmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"ringmaster/lrmd"
)

func TestParseAgent(t *testing.T) {
	for in, want := range map[string]string{
		"ocf:heartbeat:Dummy": "ocf:heartbeat:Dummy", "lsb:ssh": "lsb:ssh", "builtin:vip": "builtin:vip",
		"ocf:Dummy": "", "ocf:a:../b": "", "lsb:a/b": "", "vip": "", "builtin:": "", "a:b:c": "",
	} {
		id, err := lrmd.ParseAgent(in)
		switch {
		case want == "" && !errors.Is(err, lrmd.ErrBadAgent):
			t.Errorf("%q: got %v, %v; want ErrBadAgent", in, id, err)
		case want != "" && (err != nil || id.String() != want):
			t.Errorf("%q: got %v, %v", in, id, err)
		}
	}
}

func TestMetaDataValidate(t *testing.T) {
	md := lrmd.NewMetaData("x", "x", "", []lrmd.ParamSpec{
		{Name: "ip", Required: true},
		{Name: "n", Type: "integer", Default: "5"},
		{Name: "b", Type: "boolean"},
		{Name: "d", Type: "duration"},
		{Name: "s", Type: "select", Options: []string{"a", "b"}},
	}, nil)
	if err := md.Validate(map[string]string{"n": "x"}, false); !errors.Is(err, lrmd.ErrMissingParam) || errors.Is(err, lrmd.ErrBadParam) {
		t.Errorf("lenient: %v", err)
	}
	err := md.Validate(map[string]string{"ip": "1", "n": "x", "b": "maybe", "d": "soon", "s": "c", "zz": "1"}, true)
	for _, want := range []string{`n="x"`, `b="maybe"`, `d="soon"`, `s="c"`, `"zz"`} {
		if !strings.Contains(fmtErr(err), want) {
			t.Errorf("strict validation error lacks %s: %v", want, err)
		}
	}
	if err := md.Validate(map[string]string{"ip": "1", "n": "3", "b": "yes", "d": "200ms", "s": "a"}, true); err != nil {
		t.Errorf("valid params: %v", err)
	}
	if got := md.WithDefaults(map[string]string{"ip": "1"}); got["n"] != "5" || got["ip"] != "1" {
		t.Errorf("defaults: %v", got)
	}
	// Round trip through XML.
	x, err := md.XML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := lrmd.ParseMetaData(x)
	if err != nil || back.Param("ip") == nil || !back.Param("ip").IsRequired() || *back.Param("n").Content.Default != "5" {
		t.Fatalf("round trip: %v\n%s", err, x)
	}
}

type echoAgent struct{ md *lrmd.MetaData }

func (e echoAgent) Type() string             { return "echo" }
func (e echoAgent) MetaData() *lrmd.MetaData { return e.md }
func (e echoAgent) Exec(_ context.Context, req lrmd.Request) lrmd.Result {
	var out lrmd.Output
	out.Printf("%s n=%s", req.Action, req.Params["n"])
	return out.Result(lrmd.RCOK, "")
}

func TestBuiltinClassStrictAndDefaults(t *testing.T) {
	md := lrmd.NewMetaData("echo", "echo", "", []lrmd.ParamSpec{{Name: "n", Type: "integer", Default: "5"}}, nil)
	m, err := lrmd.NewManager(lrmd.Config{Registry: lrmd.NewRegistry(lrmd.NewBuiltins(echoAgent{md}))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if r := m.Exec(context.Background(), lrmd.Op{Agent: "builtin:echo", Action: "start"}); !r.OK() || r.Stdout != "start n=5\n" {
		t.Fatalf("defaults: %s %q", r.Summary(), r.Stdout)
	}
	if r := m.Exec(context.Background(), lrmd.Op{Agent: "builtin:echo", Action: "start", Params: map[string]string{"nn": "1"}}); r.RC != lrmd.RCErrConfigured {
		t.Fatalf("unknown parameter on a builtin: %s", r.Summary())
	}
	r := m.Exec(context.Background(), lrmd.Op{Agent: "builtin:echo", Action: "meta-data"})
	if !r.OK() || !strings.Contains(r.Stdout, `<parameter name="n"`) {
		t.Fatalf("meta-data: %s\n%s", r.Summary(), r.Stdout)
	}
}
