package groups

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaik-go/mosaik/transport"
)

// overTCP makes a member's network connect to the embedded server through
// its loopback TCP port, as a node of another process would, instead of in
// process.
var overTCP = transport.WithNATSOptions(nats.InProcessServer(nil))

// benchCluster starts 3 members on one embedded server with production
// timings and waits for a leader.
func benchCluster(b *testing.B, opts ...transport.Option) (*cluster, *node) {
	b.Helper()
	c := newCluster(b)
	c.opts = opts
	cfg := &Config{BootstrapDelay: 200 * time.Millisecond}
	nodes := []*node{c.add(cfg), c.add(cfg), c.add(cfg)}
	for _, nd := range nodes {
		if err := nd.g.When().Online(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if nd.g.IsLeader() {
			return c, nd
		}
	}
	b.Fatal("no leader")
	return nil, nil
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func benchExecute(b *testing.B, conc int, onLeader bool, opts ...transport.Option) {
	c, leader := benchCluster(b, opts...)
	target := leader
	if !onLeader {
		for _, nd := range c.nodes {
			if nd != leader {
				target = nd
				break
			}
		}
	}
	executeLoad(b, conc, target.g)
}

// executeLoad runs b.N Executes on g from conc goroutines and reports the
// throughput and latency percentiles.
func executeLoad(b *testing.B, conc int, g *Group[counterCmd, struct{}, int64]) {
	var n atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for n.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := g.Execute(context.Background(), counterCmd{Add: 1}); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
	reportLatency(b, lat)
}

func BenchmarkExecute(b *testing.B) {
	for _, bc := range []struct {
		name     string
		conc     int
		onLeader bool
		tcp      bool
		sealed   bool // every node holds one network-wide secret
	}{
		{"leader/c1", 1, true, false, false},
		{"leader/c64", 64, true, false, false},
		{"follower/c1", 1, false, false, false},
		{"follower/c64", 64, false, false, false},
		{"tcp/leader/c1", 1, true, true, false},
		{"tcp/leader/c64", 64, true, true, false},
		{"sealed/leader/c1", 1, true, false, true},
		{"sealed/leader/c64", 64, true, false, true},
		{"sealed/follower/c1", 1, false, false, true},
		{"sealed/follower/c64", 64, false, false, true},
	} {
		var opts []transport.Option
		if bc.tcp {
			opts = append(opts, overTCP)
		}
		if bc.sealed {
			opts = append(opts, transport.WithSecret(transport.NewSecret()))
		}
		b.Run(bc.name, func(b *testing.B) { benchExecute(b, bc.conc, bc.onLeader, opts...) })
	}
}

func BenchmarkFeed(b *testing.B) {
	_, leader := benchCluster(b)
	b.ResetTimer()
	start := time.Now()
	var last int64
	for i := 0; i < b.N; i++ {
		idx, err := leader.g.Feed(context.Background(), counterCmd{Add: 1})
		if err != nil {
			b.Fatal(err)
		}
		last = int64(idx)
	}
	if err := leader.g.When().Applied(context.Background(), 0); err != nil {
		b.Fatal(err)
	}
	_ = last
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
}

func BenchmarkQuery(b *testing.B) {
	for _, cons := range []Consistency{Weak, Strong} {
		name := map[Consistency]string{Weak: "weak", Strong: "strong"}[cons]
		b.Run(name+"/follower", func(b *testing.B) {
			c, leader := benchCluster(b)
			var target *node
			for _, nd := range c.nodes {
				if nd != leader {
					target = nd
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := target.g.Query(context.Background(), struct{}{}, cons); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportLatency(b, lat)
		})
	}
}
