package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/mosaik-go/mosaik/transport"
	"github.com/nats-io/nats.go"
)

// floor measures request/reply round trips at concurrency 1 on the
// kvbench cluster (temporary, issue 15 profiling): plain NATS clients on
// one server and across a route, and the transport's sealed Scope between
// two nodes on different servers.
func floor(ctx context.Context, out io.Writer, d time.Duration) error {
	dir, err := os.MkdirTemp("", "kvbench-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := startCluster(ctx, dir, false)
	if err != nil {
		return err
	}
	defer c.Shutdown()
	report := func(name string, lat []time.Duration) {
		slices.Sort(lat)
		fmt.Fprintf(out, "%-44s %7.0f/s p50 %5.0f µs p99 %5.0f µs\n", name,
			float64(len(lat))/d.Seconds(), float64(lat[len(lat)/2].Microseconds()), float64(lat[len(lat)*99/100].Microseconds()))
	}
	loop := func(f func() error) ([]time.Duration, error) {
		var lat []time.Duration
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			t := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t))
		}
		return lat, nil
	}
	for _, pair := range [][2]int{{0, 0}, {1, 0}} {
		if err := natsFloor(c.Servers[pair[0]].ClientURL(), c.Servers[pair[1]].ClientURL(), func(f func() error) error {
			lat, err := loop(f)
			if err != nil {
				return err
			}
			report(fmt.Sprintf("nats request/reply, client s%d -> responder s%d", pair[0], pair[1]), lat)
			return nil
		}); err != nil {
			return err
		}
	}
	// Two transport nodes on s1 and s0, a sealed scope.
	a, err := transport.New(ctx, transport.WithURL(c.URLs(1)...), transport.WithNATSOptions(nats.DontRandomize()))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := transport.New(ctx, transport.WithURL(c.URLs(0)...), transport.WithNATSOptions(nats.DontRandomize()))
	if err != nil {
		return err
	}
	defer b.Close()
	for _, secret := range []transport.Secret{{}, transport.NewSecret()} {
		id := [32]byte{1, 2, 3}
		sa, sb := a.Scope(id, secret), b.Scope(id, secret)
		subj := b.Subject("floor", b.ID().String())
		sub, err := sb.Subscribe(subj, func(m *transport.Msg) { m.Respond(m.Data) })
		if err != nil {
			return err
		}
		data := make([]byte, 200)
		// First contact exchanges cards.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = sa.Request(rctx, subj, b.ID(), data)
		cancel()
		if err != nil {
			return err
		}
		lat, err := loop(func() error {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := sa.Request(rctx, subj, b.ID(), data)
			return err
		})
		if err != nil {
			return err
		}
		report(fmt.Sprintf("transport Scope.Request s1 -> s0, secret %v", !secret.IsZero()), lat)
		sub.Close()
	}
	return nil
}

// natsFloor connects a responder to respURL and a client to reqURL and has
// measure time the client's request f. The first requests may find no
// responder until its interest crosses the route: f is measured once one
// has been answered.
func natsFloor(reqURL, respURL string, measure func(f func() error) error) error {
	resp, err := nats.Connect(respURL)
	if err != nil {
		return err
	}
	defer resp.Close()
	req, err := nats.Connect(reqURL)
	if err != nil {
		return err
	}
	defer req.Close()
	if _, err := resp.Subscribe("floor", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		return err
	}
	if err := resp.Flush(); err != nil {
		return err
	}
	data := make([]byte, 200)
	f := func() error { _, err := req.Request("floor", data, time.Second); return err }
	deadline := time.Now().Add(10 * time.Second)
	for err := f(); err != nil; err = f() {
		if time.Now().After(deadline) {
			return fmt.Errorf("no responder across the route: %w", err)
		}
	}
	return measure(f)
}
