package daemon

import (
	"testing"

	"go.uber.org/zap"

	"ringmaster/crm/cibedit"
	"ringmaster/crm/controld"
)

// The scheduler-input series continues after a restart from the last
// sequence written, whatever the files' times.
func TestPEInputSeriesContinues(t *testing.T) {
	dir := t.TempDir()
	w := newCIBWriter(dir, 10, zap.NewNop())
	if got := w.nextPEInput(); got != 0 {
		t.Fatalf("empty state dir: next input %d, want 0", got)
	}
	for seq := 7; seq <= 13; seq++ {
		w.savePEInput(controld.PEInput{Seq: seq, CIB: cibedit.Empty()})
	}
	w.close()
	w2 := newCIBWriter(dir, 10, zap.NewNop())
	defer w2.close()
	if got := w2.nextPEInput(); got != 14 {
		t.Fatalf("after inputs 7..13 (wrapping at 10): next %d, want 14", got)
	}

}
