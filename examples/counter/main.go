// Command counter is the seed's replicated counter: three nodes on one
// embedded NATS server form a group, increment from every node, lose their
// leader, elect a new one, and still agree on the count.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Counter is the state machine: commands add to a value.
type Counter struct{ value int64 }

// Increment is the command.
type Increment struct{ By int64 }

func (c *Counter) Signature() string                       { return "examples.counter.v1" }
func (c *Counter) Apply(cmd Increment, _ rsm.ApplyContext) { c.value += cmd.By }
func (c *Counter) Query(struct{}) int64                    { return c.value }

type node struct {
	name string
	net  *transport.Network
	g    *groups.Group[Increment, struct{}, int64]
	// faults lets the example kill a node: cut off, it looks crashed.
	faults *transport.Faults
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := &groups.Config{BootstrapDelay: 500 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond}

	// A hub starts the embedded NATS server and stays out of the group, so
	// killing a node does not take the server with it. The nodes connect to it
	// as they would to any NATS server.
	hub, err := transport.New(ctx)
	if err != nil {
		return err
	}
	defer hub.Close()
	url := hub.URL()
	var nodes []*node
	for _, name := range []string{"alpha", "beta", "gamma"} {
		faults := transport.NewFaults()
		net, err := transport.New(ctx, transport.WithURL(url), transport.WithFaults(faults))
		if err != nil {
			return err
		}
		defer net.Close()
		g, err := groups.Join(net, groups.KeyFromSecret("counter"), &Counter{}, cfg)
		if err != nil {
			return err
		}
		defer g.Close()
		nodes = append(nodes, &node{name: name, net: net, g: g, faults: faults})
	}
	fmt.Fprintf(out, "3 nodes joined group %s on %s\n", nodes[0].g.ID().Short(), url)
	for _, n := range nodes {
		if err := n.g.When().Online(ctx); err != nil {
			return err
		}
	}
	leader := leaderOf(nodes)
	fmt.Fprintf(out, "leader elected: %s\n", leader.name)

	for _, n := range nodes {
		for range 10 {
			if _, err := n.g.Execute(ctx, Increment{By: 1}); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "%s incremented 10 times\n", n.name)
	}
	if err := printCounts(ctx, out, nodes); err != nil {
		return err
	}

	fmt.Fprintf(out, "killing the leader, %s: it stops answering\n", leader.name)
	leader.faults.Isolate()
	var rest []*node
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	for _, n := range rest {
		// Wait until this node follows someone other than the dead leader.
		for {
			if err := n.g.When().Online(ctx); err != nil {
				return err
			}
			if l, _ := n.g.Leader(); l != leader.net.ID() {
				break
			}
			if _, err := n.g.When().LeaderChanged(ctx); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "new leader elected: %s\n", leaderOf(rest).name)
	for _, n := range rest {
		if _, err := n.g.Execute(ctx, Increment{By: 5}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s incremented by 5\n", n.name)
	}
	return printCounts(ctx, out, rest)
}

func leaderOf(nodes []*node) *node {
	l, _ := nodes[0].g.Leader()
	for _, n := range nodes {
		if n.net.ID() == l {
			return n
		}
	}
	return nodes[0]
}

// printCounts reads the count on every node with a linearizable query.
func printCounts(ctx context.Context, out io.Writer, nodes []*node) error {
	for _, n := range nodes {
		r, err := n.g.Query(ctx, struct{}{}, groups.Strong)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s reads count = %d\n", n.name, r.Value)
	}
	return nil
}
