package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in a log-linear layout (HdrHistogram's
// idea, small): values below 2^subBits ns are exact; above, each power of
// two is split into 2^(subBits-1) buckets, so any recorded value is known
// to within 1/128 (0.8 %). Recording is a few instructions and never
// allocates; the whole range up to 2^63 ns fits in a fixed array.
//
// A Histogram is not safe for concurrent use; merge per-goroutine ones.
type Histogram struct {
	counts [buckets]uint64
	total  uint64
	min    int64
	max    int64
}

const (
	subBits  = 8
	subCount = 1 << subBits // exact values below this
	halfSub  = subCount / 2 // buckets per power of two above it
	buckets  = subCount + (63-subBits+1)*halfSub
)

// bucketOf maps a value to its bucket.
func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // >= 1
	return subCount + (shift-1)*halfSub + int(uint64(v)>>shift) - halfSub
}

// bucketHigh is the highest value that maps to bucket i.
func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	j := i - subCount
	shift := j/halfSub + 1
	top := uint64(j%halfSub+halfSub) << shift
	return int64(top + (1 << shift) - 1)
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
}

// Quantile returns the value below which a fraction q (0..1) of the
// values lie, as the highest value of its bucket (never above Max), like
// HdrHistogram's valueAtPercentile.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return time.Duration(min(bucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// LatencyUS is a latency summary in microseconds (the JSON of pload).
type LatencyUS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Summary is the pload latency summary of h.
func (h *Histogram) Summary() LatencyUS {
	us := func(d time.Duration) float64 { return math.Round(float64(d)/100) / 10 }
	return LatencyUS{
		P50:  us(h.Quantile(0.50)),
		P90:  us(h.Quantile(0.90)),
		P99:  us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)),
		Max:  us(h.Max()),
	}
}
