package groups_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Tally is a state machine: it counts votes per option. It is a plain value;
// the group applies the same commands in the same order on every member.
type Tally struct{ votes map[string]int }

// Vote is Tally's command; the option's name is Tally's query, the count its
// answer. Commands, queries and answers travel as CBOR.
type Vote struct {
	Option string
	N      int
}

// Signature names the machine and its version: members with another
// signature form another group.
func (t *Tally) Signature() string { return "example.tally.v1" }

// Apply must be deterministic: no clock, no I/O, no randomness.
func (t *Tally) Apply(v Vote, _ rsm.ApplyContext) { t.votes[v.Option] += v.N }

func (t *Tally) Query(option string) int { return t.votes[option] }

// Three members of a group, each on its own node, as they would be in three
// processes. They find each other and elect a leader on their own; any member
// takes commands and answers queries.
func ExampleJoin() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, err := transport.New(ctx) // the embedded NATS server the others connect to
	if err != nil {
		panic(err)
	}
	defer hub.Close()
	// Short timings for the example; the defaults suit real networks.
	cfg := &groups.Config{BootstrapDelay: 100 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond}
	key := groups.KeyFromSecret("example.tally") // names the group; every member uses it
	var members []*groups.Group[Vote, string, int]
	for range 3 {
		net, err := transport.New(ctx, transport.WithURL(hub.URL()))
		if err != nil {
			panic(err)
		}
		defer net.Close()
		g, err := groups.Join(net, key, &Tally{votes: map[string]int{}}, cfg)
		if err != nil {
			panic(err)
		}
		defer g.Close()
		members = append(members, g)
	}
	for _, g := range members {
		if err := g.When().Online(ctx); err != nil {
			panic(err)
		}
	}

	// Execute returns once the command is committed and applied on the
	// leader; a follower forwards it there.
	for _, g := range members {
		if _, err := g.Execute(ctx, Vote{Option: "blue", N: 1}); err != nil {
			panic(err)
		}
	}
	if _, err := members[0].Execute(ctx, Vote{Option: "green", N: 2}); err != nil {
		panic(err)
	}
	// A Strong query is linearizable from any member: it sees every
	// command that completed before it began. Weak reads the local state.
	for _, option := range []string{"blue", "green", "red"} {
		r, err := members[2].Query(ctx, option, groups.Strong)
		if err != nil {
			panic(err)
		}
		fmt.Println(option, r.Value)
	}
	// Output:
	// blue 3
	// green 2
	// red 0
}

// Dispenser hands out numbered tickets. It implements rsm.Replier, so each
// command answers whoever issued it.
type Dispenser struct{ next int }

type Take struct{}

func (d *Dispenser) Signature() string                 { return "example.dispenser.v1" }
func (d *Dispenser) Apply(c Take, ac rsm.ApplyContext) { d.ApplyReply(c, ac) }
func (d *Dispenser) Query(struct{}) int                { return d.next }

// ApplyReply is called instead of Apply; its result reaches ExecuteReply,
// which decodes it into the type the caller names.
func (d *Dispenser) ApplyReply(Take, rsm.ApplyContext) any {
	d.next++
	return d.next
}

// ExecuteReply returns the answer of the state machine to the command, in
// the type the caller names, and the index it applied at.
func ExampleExecuteReply() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer net.Close()
	g, err := groups.Join(net, groups.KeyFromSecret("example.dispenser"), &Dispenser{},
		&groups.Config{BootstrapDelay: 100 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	if err := g.When().Online(ctx); err != nil {
		panic(err)
	}
	for range 3 {
		ticket, _, err := groups.ExecuteReply[int](ctx, g, Take{})
		if err != nil {
			panic(err)
		}
		fmt.Println("ticket", ticket)
	}
	// Output:
	// ticket 1
	// ticket 2
	// ticket 3
}
