// Command quickstart shows a replicated map in one process: three nodes on
// an embedded NATS server, two writers and a reader, sharing a map called
// "prices". Run it with: go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// Node 1 starts an embedded NATS server on a free loopback port. Nodes
	// 2 and 3 connect to it, as they would to any NATS server or cluster.
	n1, err := transport.New(ctx)
	if err != nil {
		return err
	}
	defer n1.Close()
	n2, err := transport.New(ctx, transport.WithURL(n1.URL()))
	if err != nil {
		return err
	}
	defer n2.Close()
	n3, err := transport.New(ctx, transport.WithURL(n1.URL()))
	if err != nil {
		return err
	}
	defer n3.Close()
	say("3 nodes on the embedded NATS server at %s", n1.URL())

	// Short timings keep the demo quick; the defaults suit real networks.
	timings := collections.WithGroupConfig(&groups.Config{
		BootstrapDelay:    300 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		ElectionTimeout:   500 * time.Millisecond,
	})
	// The secret seals the collection: only handles opened with it can
	// join, read or write. A real service loads it from a secrets store
	// (transport.ParseSecret); without one, anyone on the NATS server can.
	secret := transport.NewSecret()
	opts := []collections.Option{timings, collections.WithSecret(secret)}
	w1, err := collections.NewMapWriter[string, float64](n1, "prices", opts...)
	if err != nil {
		return err
	}
	defer w1.Close()
	w2, err := collections.NewMapWriter[string, float64](n2, "prices", opts...)
	if err != nil {
		return err
	}
	defer w2.Close()
	r, err := collections.NewMapReader[string, float64](n3, "prices", opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	say("node 1 and node 2 opened \"prices\" as writers, node 3 as a reader")

	for _, h := range []interface{ When() *collections.When }{w1, w2, r} {
		if err := h.When().Online(ctx); err != nil {
			return err
		}
	}
	say("the nodes found each other and elected a leader; all three are online")

	// Follow every change from the reader, starting from what it holds now.
	watched := make(chan string, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	changes := r.Watch(wctx, collections.FromVersion(r.Version()))
	go func() {
		defer close(watched)
		for ev, err := range changes {
			if err != nil {
				return
			}
			for _, c := range ev.Changes {
				watched <- fmt.Sprintf("watch: version %d: %s %s=%v", ev.Version, c.Op, c.Key, c.Value)
			}
		}
	}()

	v, err := w1.Insert(ctx, "ETH", 3812.5)
	if err != nil {
		return err
	}
	say("node 1 wrote ETH=3812.5 at version %d", v)
	if v, err = w2.Insert(ctx, "BTC", 97000); err != nil {
		return err
	}
	say("node 2 wrote BTC=97000 at version %d", v)

	// Reads are local. Wait until the reader has applied the last write.
	if err := r.When().Reaches(ctx, v); err != nil {
		return err
	}
	eth, _ := r.Get("ETH")
	say("node 3 reads ETH=%v and %d entries in all", eth, r.Len())
	for range 2 {
		say("%s", <-watched)
	}

	_, swapped, err := w2.CompareExchange(ctx, "ETH", ptr(3812.5), ptr(3900.0))
	if err != nil {
		return err
	}
	say("node 2 compare-exchanged ETH 3812.5 -> 3900: applied=%v", swapped)
	say("%s", <-watched)

	_ = w1.Close()
	say("node 1 closed its writer; the others carry on")
	if v, err = w2.Insert(ctx, "SOL", 241.7); err != nil {
		return err
	}
	say("node 2 wrote SOL=241.7 at version %d", v)
	say("%s", <-watched)
	if err := r.When().Reaches(ctx, v); err != nil {
		return err
	}
	say("node 3 now holds, in key order (the same on every node):")
	for k, p := range r.All() {
		say("  %s = %v", k, p)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
