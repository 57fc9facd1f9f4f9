package results

import (
	"math"
	"math/rand/v2"
	"slices"

	"golang.org/x/perf/benchmath"
)

// MannWhitney is the p of the two-sided Mann-Whitney U test of x against y: the probability of
// a difference at least this large between two samples of one distribution. It is x/perf's
// benchmath (AssumeNothing.Compare), which is exact up to 50 values a side (25 with ties) and
// otherwise uses the normal approximation with tie and continuity corrections; samples that are
// all one value give 1. p is NaN when either sample is empty.
func MannWhitney(x, y []float64) (p float64) {
	if len(x) == 0 || len(y) == 0 {
		return math.NaN()
	}
	// NewSample sorts its values in place: the callers' slices stay as they were.
	return benchmath.AssumeNothing.Compare(
		benchmath.NewSample(slices.Clone(x), &benchmath.DefaultThresholds),
		benchmath.NewSample(slices.Clone(y), &benchmath.DefaultThresholds)).P
}

// minExactP is the smallest two-sided p the U test can give for samples of n1 and n2: when it
// is above alpha, no difference can be told from noise.
func minExactP(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	// 2 / C(n1+n2, n1)
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return math.Min(1, 2/c)
}

// bootstrapP is a seeded bootstrap test of a statistic of new against base over per-copy
// samples: the two-sided share of resamples on the far side of "no change". It is noise
// within runs only (not between runs): the fallback when there are too few repeats. q in
// (0, 1] is a quantile; q == 0 means the mean.
func bootstrapP(base, new []float64, q float64, rounds int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	b, n := slices.Clone(base), slices.Clone(new)
	slices.Sort(b)
	slices.Sort(n)
	counts := make([]int32, max(len(b), len(n)))
	var up, down int
	for range rounds {
		d := resampleStat(rng, n, q, counts) - resampleStat(rng, b, q, counts)
		if d >= 0 {
			up++
		}
		if d <= 0 {
			down++
		}
	}
	return math.Min(1, 2*float64(min(up, down))/float64(rounds))
}

// resampleStat draws len(sorted) values with replacement and returns their quantile q (or
// mean when q is 0) in O(n): a quantile of a resample of sorted data is the value at the
// k-th smallest drawn index, found by counting.
func resampleStat(rng *rand.Rand, sorted []float64, q float64, counts []int32) float64 {
	n := len(sorted)
	if q == 0 {
		var s float64
		for range n {
			s += sorted[rng.IntN(n)]
		}
		return s / float64(n)
	}
	c := counts[:n]
	clear(c)
	for range n {
		c[rng.IntN(n)]++
	}
	k := int32(max(1, int(math.Ceil(q*float64(n)))))
	var cum int32
	for i, x := range c {
		if cum += x; cum >= k {
			return sorted[i]
		}
	}
	return sorted[n-1]
}
