package stonithd

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

func randEntries(r *rand.Rand, n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		origin := fmt.Sprintf("n%d", r.Intn(3)+1)
		at := t0.Add(time.Duration(r.Intn(50)) * time.Second)
		res := ResultSuccess
		if r.Intn(3) == 0 {
			res = ResultFailed
		}
		out[i] = Entry{
			// IDs repeat across lists on purpose (the same entry received
			// twice), sometimes with other contents (a broken peer): the
			// merge must still pick the same one everywhere.
			ID:     fmt.Sprintf("%s-%d", origin, at.Unix()),
			Target: fmt.Sprintf("n%d", at.Unix()%4+1), Action: "reboot", Device: "d", Result: res,
			Time: at, Started: at.Add(-time.Second), Origin: origin, Executioner: origin,
		}
	}
	return out
}

// TestMergeConverges checks that MergeEntries is a semilattice join over
// bounded histories: nodes receiving the same entries in any order and
// grouping end with identical histories.
func TestMergeConverges(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewSource(seed))
		max := r.Intn(10) + 1
		a, b, c := randEntries(r, r.Intn(12)), randEntries(r, r.Intn(12)), randEntries(r, r.Intn(12))
		ab := MergeEntries(max, a, b)
		ba := MergeEntries(max, b, a)
		if !reflect.DeepEqual(ab, ba) {
			t.Fatalf("seed %d: not commutative:\n%v\n%v", seed, ab, ba)
		}
		left := MergeEntries(max, MergeEntries(max, a, b), c)
		right := MergeEntries(max, a, MergeEntries(max, b, c))
		if !reflect.DeepEqual(left, right) {
			t.Fatalf("seed %d: not associative:\n%v\n%v", seed, left, right)
		}
		if again := MergeEntries(max, left, left); !reflect.DeepEqual(again, left) {
			t.Fatalf("seed %d: not idempotent", seed)
		}
		if len(left) > max {
			t.Fatalf("seed %d: %d entries kept, max %d", seed, len(left), max)
		}
		// Three nodes receiving entry by entry, in different orders.
		all := append(append(append([]Entry(nil), a...), b...), c...)
		var final [][]Entry
		for node := 0; node < 3; node++ {
			h := NewHistory(max)
			perm := r.Perm(len(all))
			for _, i := range perm {
				h.Merge(all[i])
			}
			final = append(final, h.Entries())
		}
		if !reflect.DeepEqual(final[0], final[1]) || !reflect.DeepEqual(final[1], final[2]) || (len(left) > 0 && !reflect.DeepEqual(final[0], left)) {
			t.Fatalf("seed %d: nodes diverged:\n%v\n%v\n%v", seed, final[0], final[1], final[2])
		}
	}
}

func TestHistoryMergeReportsNew(t *testing.T) {
	h := NewHistory(2)
	e := func(id string, sec int) Entry {
		return Entry{ID: id, Target: "n2", Action: "reboot", Result: ResultSuccess, Time: t0.Add(time.Duration(sec) * time.Second)}
	}
	if got := h.Merge(e("a", 1), e("b", 2)); len(got) != 2 {
		t.Errorf("first merge reported %v", got)
	}
	if got := h.Merge(e("a", 1)); len(got) != 0 {
		t.Errorf("duplicate reported as new: %v", got)
	}
	if got := h.Merge(e("old", 0)); len(got) != 0 {
		t.Errorf("an entry older than the bound keeps is not new: %v", got)
	}
	if got := h.Merge(e("c", 3)); len(got) != 1 || h.Len() != 2 || h.Entries()[0].ID != "b" {
		t.Errorf("bounded merge: new %v, kept %v", got, h.Entries())
	}
	if last, ok := h.LastSuccess("N2"); !ok || last.ID != "c" {
		t.Errorf("LastSuccess = %v %v", last, ok)
	}
}

// TestHistoryJSON pins the shape `ringctl stonith history --json` prints.
func TestHistoryJSON(t *testing.T) {
	b, err := json.Marshal([]Entry{{
		ID: "n1-1-1", Target: "n2", Action: "reboot", Device: "fence-pdu", Result: ResultSuccess,
		Time: t0.Add(time.Second), Started: t0, Origin: "n1", Executioner: "n1", Client: "controld",
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"id":"n1-1-1","target":"n2","action":"reboot","device":"fence-pdu","result":"success","time":"2026-01-01T00:00:01Z","started":"2026-01-01T00:00:00Z","origin":"n1","executioner":"n1","client":"controld"}]`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	if !strings.Contains(string(b), `"result":"success"`) {
		t.Error("result spelling")
	}
}
