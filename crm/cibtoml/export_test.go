package cibtoml_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
	"ringmaster/crm/cibtoml"
	"ringmaster/crm/simulate"
)

// TestExportCases exports the configuration of every Pacemaker case the
// CIB parser accepts as TOML, reads it back, installs it in the same CIB
// (same status) and requires the scheduler to decide exactly the same
// thing. Configurations the TOML model cannot express (attribute sets with
// rules, ...) must say so with ErrNotRepresentable.
func TestExportCases(t *testing.T) {
	shared := os.Getenv("RINGMASTER_PENGINE_CASES")
	if shared == "" {
		shared = "../../../shared/pengine/cases"
	}
	files, _ := filepath.Glob(filepath.Join(shared, "*.xml"))
	clones, _ := filepath.Glob(filepath.Join(filepath.Dir(shared), "clones", "*.xml"))
	files = append(files, clones...)
	local, _ := filepath.Glob("../pengine/testdata/*.xml")
	files = append(files, local...)
	same, notRep := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cib.Parse(bytes.NewReader(data))
		if err != nil {
			continue
		}
		m, err := cibtoml.FromCIB(c)
		if errors.Is(err, cibtoml.ErrNotRepresentable) {
			notRep++
			continue
		}
		if err != nil {
			t.Errorf("%s: FromCIB: %v", f, err)
			continue
		}
		var tb bytes.Buffer
		if err := m.Encode(&tb); err != nil {
			t.Fatal(err)
		}
		m2, err := cibtoml.Parse(filepath.Base(f)+".toml", tb.Bytes())
		if err != nil {
			t.Errorf("%s: exported TOML does not load: %v\n%s", f, err, tb.String())
			continue
		}
		cfg, err := m2.Build()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := cibedit.ReplaceConfig(c, cfg)
		if err != nil {
			t.Errorf("%s: rebuilt configuration refused: %v", f, err)
			continue
		}
		want, got := schedule(t, c), schedule(t, c2)
		if want != got {
			t.Errorf("%s: the scheduler decides differently after the TOML round trip:\n--- original\n%s\n--- via TOML\n%s\n--- TOML\n%s", f, want, got, tb.String())
			continue
		}
		same++
	}
	t.Logf("%d configurations round-trip through TOML with identical decisions, %d not representable", same, notRep)
	if same < 15 {
		t.Errorf("only %d configurations checked", same)
	}
}

func schedule(t *testing.T, c *cib.CIB) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := simulate.Run(&out, c, simulate.Options{Now: time.Unix(1700000000, 0), Schedule: true}); err != nil {
		return "error: " + err.Error()
	}
	return out.String()
}
