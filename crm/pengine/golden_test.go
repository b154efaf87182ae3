package pengine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
	"ringmaster/crm/simulate"
)

// Floors for the shared Pacemaker regression cases. The test fails when the
// scheduler gets worse than this; raise them when it gets better.
const (
	// goldenFloor is how many cases must pass at check.py's "final" level.
	goldenFloor = 70
	// scoresFloor is how many cases must reproduce their .scores file.
	scoresFloor = 70
)

// goldenNow is the time used for cases without an execution-date; none of
// the shared cases depends on the exact value.
var goldenNow = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// casesDir finds the shared cases: $RINGMASTER_PENGINE_CASES, else
// ../shared/pengine/cases relative to the repository root (the directory
// holding go.mod, found by walking up from the test's directory).
func casesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("RINGMASTER_PENGINE_CASES"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "pengine", "cases")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// requireCases returns the case names, skipping (or failing under CI) when
// the directory is missing.
func requireCases(t *testing.T) (string, []string) {
	t.Helper()
	dir := casesDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		msg := "*** SHARED PENGINE CASES NOT FOUND at " + dir + " (set RINGMASTER_PENGINE_CASES): golden comparison NOT RUN ***"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".xml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return dir, names
}

func loadCIB(t *testing.T, path string) *cib.CIB {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := cib.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestSharedCases runs every shared case like `crm_simulate -x NAME.xml -S`
// and compares the output with NAME.summary with check.py's semantics
// (transition set, action multiset without pseudo actions, final placement).
func TestSharedCases(t *testing.T) {
	dir, names := requireCases(t)
	passed, identical := 0, 0
	for _, n := range names {
		want, err := os.ReadFile(filepath.Join(dir, n+".summary"))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		var out bytes.Buffer
		_, err = simulate.Run(&out, loadCIB(t, filepath.Join(dir, n+".xml")), simulate.Options{Now: goldenNow, Simulate: true})
		if err != nil {
			t.Logf("FAIL %s: %v", n, err)
			continue
		}
		level, why := compareSummaries(parseSummary(out.String()), parseSummary(string(want)))
		if level != "" {
			t.Logf("FAIL %s [%s] %s", n, level, why)
			continue
		}
		passed++
		if out.String() == string(want) {
			identical++
		}
	}
	t.Logf("shared cases: %d of %d pass at level final (%d byte-identical to crm_simulate)", passed, len(names), identical)
	if passed < goldenFloor {
		t.Errorf("only %d cases pass at level final; the floor is %d", passed, goldenFloor)
	}
}

// cloneFloor is how many cases of the collective tier
// (../shared/pengine/clones) must pass at check.py's "final" level.
const cloneFloor = 146

// TestSharedCloneCases runs the collective tier (clones, promotable
// clones, notifications, on-fail) like TestSharedCases.
func TestSharedCloneCases(t *testing.T) {
	dir := filepath.Join(filepath.Dir(casesDir(t)), "clones")
	entries, err := os.ReadDir(dir)
	if err != nil {
		msg := "*** SHARED CLONE CASES NOT FOUND at " + dir + ": golden comparison NOT RUN ***"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	passed, total := 0, 0
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".xml")
		if !ok {
			continue
		}
		total++
		want, err := os.ReadFile(filepath.Join(dir, n+".summary"))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		var out bytes.Buffer
		if _, err := simulate.Run(&out, loadCIB(t, filepath.Join(dir, n+".xml")), simulate.Options{Now: goldenNow, Simulate: true}); err != nil {
			t.Logf("FAIL %s: %v", n, err)
			continue
		}
		if level, why := compareSummaries(parseSummary(out.String()), parseSummary(string(want))); level != "" {
			t.Logf("FAIL %s [%s] %s", n, level, why)
			continue
		}
		passed++
	}
	t.Logf("clone cases: %d of %d pass at level final", passed, total)
	if passed < cloneFloor {
		t.Errorf("only %d clone cases pass at level final; the floor is %d", passed, cloneFloor)
	}
}

// TestSharedScores compares the allocation scores with NAME.scores.
func TestSharedScores(t *testing.T) {
	dir, names := requireCases(t)
	passed := 0
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(dir, n+".scores"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		var want []string
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(l, "pcmk__") {
				want = append(want, l)
			}
		}
		sort.Strings(want)
		res, err := pengine.Schedule(loadCIB(t, filepath.Join(dir, n+".xml")), goldenNow, pengine.Options{ShowScores: true})
		if err != nil {
			t.Logf("FAIL %s: %v", n, err)
			continue
		}
		got := pengine.ScoresSorted(res.Scores)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Logf("FAIL %s: scores differ (%d lines, want %d)", n, len(got), len(want))
			continue
		}
		passed++
	}
	t.Logf("shared cases: %d of %d reproduce their allocation scores", passed, len(names))
	if passed < scoresFloor {
		t.Errorf("only %d cases reproduce their scores; the floor is %d", passed, scoresFloor)
	}
}
