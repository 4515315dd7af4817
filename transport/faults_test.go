package transport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// shortCtx bounds a request that is expected to go unanswered.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func requestOK(t *testing.T, from *Network, to *Network, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := from.requestPlain(ctx, from.Subject(subject), to.ID(), []byte("ping")); err != nil {
		t.Fatalf("request %s -> %s: %v", from.ID().Short(), to.ID().Short(), err)
	}
}

func requestLost(t *testing.T, from *Network, to *Network, subject string) {
	t.Helper()
	if _, err := from.requestPlain(shortCtx(t), from.Subject(subject), to.ID(), []byte("ping")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request %s -> %s: %v, want it lost", from.ID().Short(), to.ID().Short(), err)
	}
}

func publish(t *testing.T, n *Network, subject string, to PeerID, data string) {
	t.Helper()
	if err := n.publishPlain(n.Subject(subject), to, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, ch <-chan *Msg, want string) {
	t.Helper()
	if m := next(t, ch); string(m.Data) != want {
		t.Fatalf("got %q, want %q", m.Data, want)
	}
}

func drops(n *Network) uint64 { return n.Stats().FaultDrops }

func waitDrops(t *testing.T, n *Network, want uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d fault drops", want), func() bool { return drops(n) == want })
}

func TestIsolate(t *testing.T) {
	fa := NewFaults()
	a := newNet(t, WithFaults(fa))
	b := join(t, a)
	if a.Faults() != fa {
		t.Fatal("Faults() is not the injector given")
	}
	toA, toB := collect(t, a, a.Subject("to-a")), collect(t, b, b.Subject("to-b"))
	echo(t, a, a.Subject("echo"), "")
	echo(t, b, b.Subject("echo"), "")

	fa.Isolate()
	out := a.Stats().MsgsOut
	publish(t, a, "to-b", b.ID(), "lost 1")
	publish(t, a, "to-b", PeerID{}, "lost broadcast")
	if got := drops(a); got != 2 {
		t.Errorf("%d drops after two sends, want 2", got)
	}
	if a.Stats().MsgsOut != out {
		t.Error("an isolated node sent frames")
	}
	publish(t, b, "to-a", a.ID(), "lost 2")
	waitDrops(t, a, 3) // dropped where delivery would have been
	empty(t, toA)
	requestLost(t, a, b, "echo") // dropped on the way out
	requestLost(t, b, a, "echo") // dropped on the way in
	if drops(b) != 0 {
		t.Errorf("the healthy node counted %d drops", drops(b))
	}

	fa.Heal()
	publish(t, a, "to-b", b.ID(), "back")
	expect(t, toB, "back") // nothing sent while isolated arrived before it
	publish(t, b, "to-a", a.ID(), "back too")
	expect(t, toA, "back too")
	requestOK(t, a, b, "echo")
	requestOK(t, b, a, "echo")
}

// TestPartition cuts a from b only; c talks to both. Each node listens on
// its own subject for point-to-point messages and on "all" for broadcasts.
func TestPartition(t *testing.T) {
	fa := NewFaults()
	a := newNet(t, WithFaults(fa))
	b, c := join(t, a), join(t, a)
	own := func(n *Network) string { return "p." + n.ID().String() }
	inA, inB, inC := collect(t, a, a.Subject(own(a))), collect(t, b, b.Subject(own(b))), collect(t, c, c.Subject(own(c)))
	allA, allB, allC := collect(t, a, a.Subject("all")), collect(t, b, b.Subject("all")), collect(t, c, c.Subject("all"))
	for _, n := range []*Network{a, b, c} {
		echo(t, n, n.Subject("echo", n.ID().String()), "")
	}
	send := func(from, to *Network, data string) { t.Helper(); publish(t, from, own(to), to.ID(), data) }

	fa.Partition(b.ID())
	send(a, b, "a->b lost")
	if drops(a) != 1 {
		t.Fatalf("a counted %d drops, want 1", drops(a))
	}
	send(a, c, "a->c")
	expect(t, inC, "a->c")
	// A broadcast from a still reaches b: Partition acts on what a receives
	// from b and on what a sends to b by name.
	publish(t, a, "all", PeerID{}, "a->all")
	expect(t, allB, "a->all")
	expect(t, allC, "a->all")
	expect(t, allA, "a->all") // NATS echoes a node's own broadcasts to it
	// Sent last by a to b's subject, so "a->b lost" would be ahead of it.
	fa.Heal()
	send(a, b, "a->b barrier")
	expect(t, inB, "a->b barrier")
	fa.Partition(b.ID())

	send(b, a, "b->a lost")
	waitDrops(t, a, 2)
	publish(t, b, "all", PeerID{}, "b->all") // a drops it, c gets it
	waitDrops(t, a, 3)
	expect(t, allC, "b->all")
	send(c, a, "c->a")
	expect(t, inA, "c->a") // the first and only message a delivered
	empty(t, allA)

	echoSubj := func(n *Network) string { return "echo." + n.ID().String() }
	requestLost := func(from, to *Network) { t.Helper(); requestLost(t, from, to, echoSubj(to)) }
	requestOK := func(from, to *Network) { t.Helper(); requestOK(t, from, to, echoSubj(to)) }
	requestLost(a, b)
	requestLost(b, a)
	requestOK(a, c)
	requestOK(c, a)
	requestOK(b, c)

	// Raft RPCs between a and b fail as unreachable; a and c still talk.
	ra := newRaftTransport(t, sealedScope(a, "part"), 200*time.Millisecond)
	rb := newRaftTransport(t, sealedScope(b, "part"), 200*time.Millisecond)
	rc := newRaftTransport(t, sealedScope(c, "part"), 200*time.Millisecond)
	for _, rt := range []*RaftTransport{ra, rb, rc} {
		serve(t, rt, func(rpc raft.RPC) { rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil) })
	}
	vote := func(from, to *RaftTransport) error {
		return from.RequestVote("x", to.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, new(raft.RequestVoteResponse))
	}
	if err := vote(ra, rb); !errors.Is(err, ErrUnreachable) {
		t.Errorf("a->b vote: %v, want ErrUnreachable", err)
	}
	if err := vote(rb, ra); !errors.Is(err, ErrUnreachable) {
		t.Errorf("b->a vote: %v, want ErrUnreachable", err)
	}
	if err := vote(ra, rc); err != nil {
		t.Errorf("a->c vote: %v", err)
	}
	if err := vote(rc, ra); err != nil {
		t.Errorf("c->a vote: %v", err)
	}

	// Partitions add up.
	fa.Partition(c.ID())
	requestLost(a, c)
	requestLost(a, b)

	fa.Heal()
	send(a, b, "healed")
	expect(t, inB, "healed")
	requestOK(a, b)
	requestOK(b, a)
	requestOK(a, c)
	if err := vote(ra, rb); err != nil {
		t.Errorf("a->b vote after Heal: %v", err)
	}
	empty(t, inA)
}

// TestDelay sends 100 numbered messages, some fragmented, with a delay: they
// arrive in order and none earlier than the delay.
func TestDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	fa := NewFaults()
	a := newNet(t, WithFaults(fa), withMaxChunk(4096))
	b := join(t, a)
	in := collect(t, b, b.Subject("d"))
	fa.Delay(delay)
	const n = 100
	sent := make([]time.Time, n)
	for i := range sent {
		data := []byte(strconv.Itoa(i))
		if i%10 == 3 {
			data = append(data, make([]byte, 10_000)...) // three fragments
		}
		sent[i] = time.Now()
		if err := a.publishPlain(a.Subject("d"), b.ID(), data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m := next(t, in)
		arrived := time.Now()
		got, err := strconv.Atoi(string(m.Data[:len(strconv.Itoa(i))]))
		if err != nil || got != i {
			t.Fatalf("message %d: got %q…", i, trunc(m.Data))
		}
		if early := sent[i].Add(delay).Sub(arrived); early > 0 {
			t.Fatalf("message %d arrived %v before its delay", i, early)
		}
	}

	// Requests pay the delay on the way out.
	echo(t, b, b.Subject("echo"), "")
	start := time.Now()
	requestOK(t, a, b, "echo")
	if took := time.Since(start); took < delay {
		t.Errorf("delayed request answered in %v", took)
	}
	fa.Heal()
	publish(t, a, "d", b.ID(), "healed")
	expect(t, in, "healed")
}

// TestDelayOrderAcrossHeal: messages already delayed when the delay is lifted
// still arrive before the ones sent afterwards.
func TestDelayOrderAcrossHeal(t *testing.T) {
	fa := NewFaults()
	a := newNet(t, WithFaults(fa))
	b := join(t, a)
	in := collect(t, b, b.Subject("d"))
	fa.Delay(200 * time.Millisecond)
	publish(t, a, "d", b.ID(), "first")
	fa.Heal()
	publish(t, a, "d", b.ID(), "second")
	expect(t, in, "first")
	expect(t, in, "second")
}

// TestDelayClose: Close does not wait for delayed messages.
func TestDelayClose(t *testing.T) {
	fa := NewFaults()
	a := newNet(t, WithFaults(fa))
	fa.Delay(time.Hour)
	for range 10 {
		publish(t, a, "d", PeerID{}, "never")
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with delayed messages pending", took)
	}
}
