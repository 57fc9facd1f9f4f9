package results

import (
	"math"
	"math/rand/v2"
	"slices"
)

// MannWhitney is the two-sided Mann-Whitney U test of x against y: the probability of a
// difference at least this large between two samples of one distribution. Without ties and
// with at most 60 values together it is exact; otherwise it uses the normal approximation
// with tie and continuity corrections. p is NaN when either sample is empty.
func MannWhitney(x, y []float64) (u, p float64) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), math.NaN()
	}
	type obs struct {
		v  float64
		in int // 0: x, 1: y
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range x {
		all = append(all, obs{v, 0})
	}
	for _, v := range y {
		all = append(all, obs{v, 1})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Midranks; tie groups for the variance correction.
	var r1, tieSum float64
	ties := false
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].in == 0 {
				r1 += rank
			}
		}
		if t := float64(j - i); t > 1 {
			ties = true
			tieSum += t*t*t - t
		}
		i = j
	}
	u = r1 - float64(n1*(n1+1))/2
	if !ties && n1+n2 <= 60 {
		return u, exactU(n1, n2, u)
	}
	n := float64(n1 + n2)
	mu := float64(n1*n2) / 2
	sigma2 := float64(n1*n2) / 12 * ((n + 1) - tieSum/(n*(n-1)))
	if sigma2 <= 0 {
		return u, 1 // every value the same
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(sigma2)
	if z < 0 {
		z = 0
	}
	return u, math.Min(1, math.Erfc(z/math.Sqrt2))
}

// exactU is the exact two-sided p of U for samples of n1 and n2 without ties.
func exactU(n1, n2 int, u float64) float64 {
	// counts[k]: arrangements of n1 x's among n1+n2 with U = k (dynamic programming over
	// sample sizes, in float64 to avoid overflow).
	maxU := n1 * n2
	prev := make([][]float64, n2+1) // prev[j] = distribution for (i-1, j)
	for j := 0; j <= n2; j++ {
		prev[j] = []float64{1} // i = 0: U = 0 in one way
	}
	for i := 1; i <= n1; i++ {
		cur := make([][]float64, n2+1)
		cur[0] = []float64{1}
		for j := 1; j <= n2; j++ {
			// f(i, j, k) = f(i-1, j, k-j) + f(i, j-1, k)
			d := make([]float64, i*j+1)
			for k, c := range prev[j] {
				d[k+j] += c
			}
			for k, c := range cur[j-1] {
				d[k] += c
			}
			cur[j] = d
		}
		prev = cur
	}
	dist := prev[n2]
	var total, le, ge float64
	k := int(math.Round(u))
	for v := 0; v <= maxU && v < len(dist); v++ {
		total += dist[v]
		if v <= k {
			le += dist[v]
		}
		if v >= k {
			ge += dist[v]
		}
	}
	return math.Min(1, 2*math.Min(le, ge)/total)
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
