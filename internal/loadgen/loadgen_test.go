package loadgen

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// within reports whether got is within 1/256 of want (a bucket's middle
// is at most half its width, 1/128 of its lower bound, from any value in it).
func within(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff*256 <= want
}

// Every value reads back as its bucket's middle, within 1/256 of it, and
// a larger value never falls in an earlier bucket.
func TestBucketPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []time.Duration{0, 1, 127, 128, 129, 255, 256, 257, 1<<20 - 1, 1 << 20, time.Hour, 1<<63 - 1}
	for range 100_000 {
		vals = append(vals, time.Duration(r.Int64N(int64(time.Hour))))
	}
	for _, v := range vals {
		if got := middle(bucket(v)); !within(got, v) {
			t.Fatalf("%d ns (bucket %d) reads as %d ns", v, bucket(v), got)
		}
	}
	prev := -1
	for v := time.Duration(0); v < 1<<16; v++ {
		b := bucket(v)
		if b < prev || b > prev+1 {
			t.Fatalf("%d ns is in bucket %d after bucket %d", v, b, prev)
		}
		prev = b
	}
}

// Percentiles read from a histogram match the exact ones within 1/256, and
// the histogram stays small however many latencies it counts.
func TestHistPercentiles(t *testing.T) {
	var a, b hist
	const n = 2_000_000
	for i := range n {
		d := time.Duration(i+1) * 50 * time.Nanosecond // 50 ns to 100 ms
		if i%2 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
	}
	var h hist
	h.merge(&a)
	h.merge(&b)
	if h.n != n {
		t.Fatalf("counted %d, want %d", h.n, n)
	}
	for _, k := range []int{0, 1, n / 2, n * 99 / 100, n - 1} {
		want := time.Duration(k+1) * 50 * time.Nanosecond
		if got := h.at(k); !within(got, want) {
			t.Errorf("the %d-th latency reads %v, want %v", k, got, want)
		}
	}
	if len(h.counts) > 64<<subBits {
		t.Errorf("%d buckets for latencies up to 100 ms", len(h.counts))
	}
}

// Measure counts the operations of every worker, and none before the
// warm-up ends.
func TestMeasure(t *testing.T) {
	s := Measure(context.Background(), 4, 20*time.Millisecond, 50*time.Millisecond, func(ctx context.Context, w, i int) (int, error) {
		time.Sleep(100 * time.Microsecond)
		return 1, nil
	})
	if err := s.Sane(); err != nil {
		t.Fatal(err)
	}
	if s.Retries != int64(s.Ops) {
		t.Errorf("%d retries over %d operations, want one each", s.Retries, s.Ops)
	}
	if s.P50 < 100*time.Microsecond {
		t.Errorf("p50 %v, below the operation's own sleep", s.P50)
	}
}
