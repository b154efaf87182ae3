package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverAndOrder(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1, 1<<63 - 1} {
		b := bucketOf(v)
		if b < prev || b >= buckets {
			t.Fatalf("value %d: bucket %d after %d (of %d)", v, b, prev, buckets)
		}
		if hi := bucketHigh(b); hi < v || float64(hi-v) > float64(v)/128+1 {
			t.Fatalf("value %d: bucket %d high %d", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Fatalf("value %d also fits bucket %d", v, b-1)
		}
		prev = b
	}
}

// TestQuantilesWithinPrecision compares with exact quantiles of random
// data: every answer is within the histogram's 1/128 relative precision.
func TestQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * 50000) // ~50 µs mean
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[max(0, int(q*float64(len(vals))+0.999999)-1)]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact) > float64(exact)/128+1 {
			t.Fatalf("q %v: got %d exact %d", q, got, exact)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) || h.Count() != uint64(len(vals)) {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
	var a, b Histogram
	for i, v := range vals {
		if i%2 == 0 {
			a.Record(time.Duration(v))
		} else {
			b.Record(time.Duration(v))
		}
	}
	a.Merge(&b)
	if a.Quantile(0.99) != h.Quantile(0.99) || a.Max() != h.Max() {
		t.Fatal("merge differs")
	}
	if s := (&Histogram{}).Summary(); s != (LatencyUS{}) {
		t.Fatalf("empty summary %+v", s)
	}
}
