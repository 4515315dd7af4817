// Command stall measures how long writes stall when a NATS server or a
// leader crashes, at the default timings. Each trial runs three members,
// member i on server i of a cluster of three NATS servers reached over
// TCP (as separate nats-server processes are), with a writer on every
// member, and then crashes one of:
//
//	server        the server of a follower
//	leaderserver  the leader's server
//	leader        the leader (isolated: it neither sends nor receives)
//
// A writer's stall is the longest time between two of its acknowledged
// writes around the crash, counting from its last write before it; a
// trial's stall is the longest of its writers' (the crashed leader's
// writer is not counted). It prints the median and worst per case.
//
//	go run ./internal/stall -trials 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/natstest"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
	"github.com/nats-io/nats.go"
)

type counter struct{ n int64 }

func (*counter) Signature() string                   { return "stall.counter.v1" }
func (c *counter) Apply(d int64, _ rsm.ApplyContext) { c.n += d }
func (c *counter) Query(struct{}) int64              { return c.n }

type member struct {
	net *transport.Network
	g   *groups.Group[int64, struct{}, int64]
}

// writer records when each of its writes was acknowledged.
type writer struct {
	m    *member
	mu   sync.Mutex
	acks []time.Time
	errs int
}

func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := w.m.g.Execute(wctx, 1)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, time.Now())
		} else if ctx.Err() == nil {
			w.errs++
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// after counts the writes acknowledged after t.
func (w *writer) after(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, _ := slices.BinarySearchFunc(w.acks, t, func(a, b time.Time) int { return a.Compare(b) })
	return len(w.acks) - i
}

// stall is the longest gap between acknowledgements from the last one
// before t to the last one recorded.
func (w *writer) stall(t time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, _ := slices.BinarySearchFunc(w.acks, t, func(a, b time.Time) int { return a.Compare(b) })
	prev := t
	if i > 0 {
		prev = w.acks[i-1]
	}
	var worst time.Duration
	for _, a := range w.acks[i:] {
		worst = max(worst, a.Sub(prev))
		prev = a
	}
	return worst
}

func trial(kind string) (time.Duration, error) {
	cl, err := natstest.Start(3)
	if err != nil {
		return 0, err
	}
	defer cl.Shutdown()
	key := groups.NewKey()
	cfg := &groups.Config{BootstrapDelay: 300 * time.Millisecond}
	var ms []*member
	faults := make([]*transport.Faults, 3)
	defer func() {
		for _, m := range ms {
			m.g.Close()
			m.net.Close()
		}
	}()
	for i := range 3 {
		faults[i] = transport.NewFaults()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := transport.New(ctx, transport.WithURL(cl.URLs(i)...),
			transport.WithNATSOptions(nats.DontRandomize()), transport.WithFaults(faults[i]))
		cancel()
		if err != nil {
			return 0, err
		}
		c := *cfg
		g, err := groups.Join(n, key, &counter{}, &c)
		if err != nil {
			n.Close()
			return 0, err
		}
		ms = append(ms, &member{n, g})
	}
	leader := -1
	deadline := time.Now().Add(30 * time.Second)
	for leader < 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no leader")
		}
		for i, m := range ms {
			if m.g.IsLeader() && agreed(ms, m.net.ID()) {
				leader = i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ws []*writer
	for _, m := range ms {
		w := &writer{m: m}
		ws = append(ws, w)
		wg.Go(func() { w.run(ctx) })
	}
	defer func() { stop(); wg.Wait() }()
	warm := time.Now()
	for !allAfter(ws, warm, 20) {
		if time.Since(warm) > 20*time.Second {
			return 0, fmt.Errorf("no writes before the crash")
		}
		time.Sleep(5 * time.Millisecond)
	}
	measured := ws
	at := time.Now()
	switch kind {
	case "server":
		cl.Crash((leader + 1) % 3)
	case "leaderserver":
		cl.Crash(leader)
	case "leader":
		faults[leader].Isolate()
		measured = slices.Delete(slices.Clone(ws), leader, leader+1)
	}
	for !allAfter(measured, at, 20) {
		if time.Since(at) > 30*time.Second {
			return 0, fmt.Errorf("writes did not resume within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var worst time.Duration
	for _, w := range measured {
		worst = max(worst, w.stall(at))
	}
	return worst, nil
}

func agreed(ms []*member, id transport.PeerID) bool {
	for _, m := range ms {
		if l, ok := m.g.Leader(); !ok || l != id {
			return false
		}
	}
	return true
}

func allAfter(ws []*writer, t time.Time, n int) bool {
	for _, w := range ws {
		if w.after(t) < n {
			return false
		}
	}
	return true
}

func main() {
	trials := flag.Int("trials", 10, "trials per case")
	cases := flag.String("cases", "server,leaderserver,leader", "cases to run, comma separated")
	flag.Parse()
	failed := false
	for _, kind := range strings.Split(*cases, ",") {
		var stalls []time.Duration
		for i := range *trials {
			d, err := trial(kind)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s trial %d: %v\n", kind, i, err)
				failed = true
				continue
			}
			stalls = append(stalls, d)
		}
		if len(stalls) == 0 {
			continue
		}
		slices.Sort(stalls)
		fmt.Printf("%-13s trials %2d  median %8v  worst %8v  all %v\n", kind, len(stalls),
			stalls[len(stalls)/2].Round(time.Millisecond), stalls[len(stalls)-1].Round(time.Millisecond), rounded(stalls))
	}
	if failed {
		os.Exit(1)
	}
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
