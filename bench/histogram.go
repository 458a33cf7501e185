package main

import (
	"math/bits"
	"time"
)

// Log-linear latency histogram (HDR style): values below 64 ns have a bucket
// each; above, every power of two is split into 32 buckets, so a recorded
// value is known to within ~3% (reported at the bucket midpoint, ±1.6%).
// Recording is an index computation and an increment: no allocation, no lock.
const (
	histLinear  = 64
	histSubBits = 5 // 32 sub-buckets per power of two
	histSub     = 1 << histSubBits
	histMaxBits = 40 // values are capped at 2^40 ns (~18 min)
	histBuckets = histLinear + (histMaxBits-histSubBits)*histSub
)

// histogram counts durations in nanoseconds. The zero value is empty and
// ready; it is owned by one goroutine while recording.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

// record adds one duration.
func (h *histogram) record(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)))]++
	h.n++
}

// merge adds every count of o to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the duration below which fraction q (0..1) of the recorded
// values lie, or 0 when the histogram is empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return time.Duration(histValue(i))
		}
	}
	return time.Duration(histValue(histBuckets - 1))
}

func histIndex(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	if v >= 1<<histMaxBits {
		v = 1<<histMaxBits - 1
	}
	shift := bits.Len64(v) - (histSubBits + 1) // >= 1 since v >= 64
	mant := v >> shift                         // in [histSub, 2*histSub)
	return histLinear + (shift-1)*histSub + int(mant-histSub)
}

// histValue is the midpoint of bucket i in nanoseconds.
func histValue(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	i -= histLinear
	shift := i/histSub + 1
	mant := uint64(i%histSub + histSub)
	lo := mant << shift
	return lo + (uint64(1)<<shift)/2
}
