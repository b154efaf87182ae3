package sim

import (
	"os"
	"strconv"
	"testing"
)

// regressionSeeds failed once; each comment names the bug.
var regressionSeeds = []int64{}

func seedRange(t *testing.T) (first, n int64) {
	first, n = 1, 300
	if testing.Short() {
		n = 50
	}
	if v := os.Getenv("RINGMASTER_CRM_SIM_SEEDS"); v != "" {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("RINGMASTER_CRM_SIM_SEEDS=%q: %v", v, err)
		}
		n = x
	}
	if v := os.Getenv("RINGMASTER_CRM_SIM_FIRST"); v != "" {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("RINGMASTER_CRM_SIM_FIRST=%q: %v", v, err)
		}
		first = x
	}
	return first, n
}

func runSeed(t *testing.T, seed int64) {
	t.Helper()
	o := RandomOptions(seed)
	c := New(o)
	if f := c.Run(); f != nil {
		t.Fatalf("%v\nreplay: RINGMASTER_CRM_SIM_SEED=%d go test ./crm/controld/sim -run TestSeeds -v", f, seed)
	}
}

// TestSeeds runs random clusters with crashes, partitions, operation and
// fencing failures and checks safety after every step and convergence
// after the faults stop.
func TestSeeds(t *testing.T) {
	if v := os.Getenv("RINGMASTER_CRM_SIM_SEED"); v != "" {
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		runSeed(t, seed)
		return
	}
	for _, s := range regressionSeeds {
		runSeed(t, s)
	}
	first, n := seedRange(t)
	for s := first; s < first+n; s++ {
		runSeed(t, s)
	}
}
