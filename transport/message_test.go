package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(context.Background(),
		WithNetwork("a.b"), WithURL(" "), WithIdentity(nil), WithSecret(Secret{}), WithRPCTimeout(0))
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	// Every problem is reported at once.
	for _, want := range []string{"WithNetwork", "WithURL", "WithIdentity", "WithSecret", "WithRPCTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	for _, name := range []string{"", "a.b", "a b", "*", ">", "a>", "a\tb"} {
		if _, err := New(context.Background(), WithNetwork(name)); err == nil {
			t.Errorf("WithNetwork(%q) accepted", name)
		}
	}
}

func TestNetworkIdentity(t *testing.T) {
	ident := NewIdentity()
	id := ident.PeerID()
	n := newNet(t, WithIdentity(ident), WithNetwork("ident"), WithRPCTimeout(time.Second))
	if n.ID() != id {
		t.Errorf("ID = %s, want %s", n.ID().Short(), id.Short())
	}
	// A node knows its own card from the start.
	if e := n.cards.get(id); e == nil || !bytes.Equal(e.card.raw, ident.card) {
		t.Error("a node does not know its own card")
	}
	if n.Name() != "ident" || n.Subject("a", "b") != "ident.a.b" {
		t.Errorf("Name %q, Subject %q", n.Name(), n.Subject("a", "b"))
	}
	if n.RPCTimeout() != time.Second {
		t.Errorf("RPCTimeout = %v", n.RPCTimeout())
	}
	if n.Logger() == nil || n.Faults() == nil {
		t.Error("nil Logger or Faults")
	}
	if !strings.HasPrefix(n.URL(), "nats://127.0.0.1:") {
		t.Errorf("URL = %q", n.URL())
	}
	if n.RouteURL() != "" {
		t.Errorf("RouteURL without routes = %q", n.RouteURL())
	}
	m := join(t, n)
	if m.ID() == n.ID() || m.ID().IsZero() {
		t.Error("joined node has no identity of its own")
	}
	if m.Name() != DefaultNetwork {
		t.Errorf("default network %q", m.Name())
	}
	if m.RouteURL() != "" {
		t.Errorf("RouteURL of a client-only node = %q", m.RouteURL())
	}
}

func TestPublishSubscribeAcrossNetworks(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	got := collect(t, b, b.Subject("x"))
	for i := range 10 {
		if err := a.publishPlain(a.Subject("x"), PeerID{}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		m := next(t, got)
		if m.From != a.ID() || m.Subject != "mosaik.x" || !bytes.Equal(m.Data, []byte{byte(i)}) {
			t.Fatalf("message %d: from %s subject %s data %v", i, m.From.Short(), m.Subject, m.Data)
		}
		if m.ExpectsReply() {
			t.Error("a published message expects a reply")
		}
		if err := m.Respond([]byte("no")); err == nil {
			t.Error("Respond to a published message succeeded")
		}
	}
	st := a.Stats()
	if st.MsgsOut < 10 || st.BytesOut < 10*(headerLen+1) {
		t.Errorf("sender stats %+v", st)
	}
	if st := b.Stats(); st.MsgsIn < 10 || st.Malformed != 0 {
		t.Errorf("receiver stats %+v", st)
	}
}

// echo answers every request on subject with prefix+data.
func echo(t testing.TB, n *Network, subject, prefix string) {
	t.Helper()
	subscribe(t, n, subject, func(m *Msg) {
		if !m.ExpectsReply() {
			t.Errorf("request does not expect a reply")
			return
		}
		if err := m.Respond(append([]byte(prefix), m.Data...)); err != nil {
			t.Errorf("Respond: %v", err)
		}
	})
}

func TestRequestRespond(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	echo(t, b, b.Subject("echo"), "re:")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := a.requestPlain(ctx, a.Subject("echo"), b.ID(), []byte("ping"))
	if err != nil || string(got) != "re:ping" {
		t.Fatalf("Request = %q, %v", got, err)
	}
	// The zero peer accepts a reply from anyone.
	got, err = a.requestPlain(ctx, a.Subject("echo"), PeerID{}, []byte("anyone"))
	if err != nil || string(got) != "re:anyone" {
		t.Fatalf("Request to zero peer = %q, %v", got, err)
	}
	// A node may ask itself.
	echo(t, a, a.Subject("self"), "me:")
	got, err = a.requestPlain(ctx, a.Subject("self"), a.ID(), []byte("x"))
	if err != nil || string(got) != "me:x" {
		t.Fatalf("Request to self = %q, %v", got, err)
	}
	a.mu.Lock()
	pending := len(a.calls)
	a.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d calls left registered after their requests returned", pending)
	}
}

func TestRequestConcurrent(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	echo(t, b, b.Subject("echo"), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				want := fmt.Sprintf("%d/%d", g, i)
				got, err := a.requestPlain(ctx, a.Subject("echo"), b.ID(), []byte(want))
				if err != nil || string(got) != want {
					t.Errorf("Request %s = %q, %v", want, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCallStreamsReplies(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	const replies = 5
	subscribe(t, b, b.Subject("stream"), func(m *Msg) {
		for i := range replies {
			if err := m.Respond(fmt.Appendf(nil, "%s-%d", m.Data, i)); err != nil {
				t.Errorf("Respond: %v", err)
			}
		}
	})
	type reply struct {
		data string
		err  error
	}
	ch := make(chan reply, 2*replies)
	cancel, err := a.callPlain(a.Subject("stream"), b.ID(), []byte("r"), func(b []byte, err error) {
		ch <- reply{string(b), err}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	for i := range replies {
		select {
		case r := <-ch:
			if want := fmt.Sprintf("r-%d", i); r.err != nil || r.data != want {
				t.Fatalf("reply %d = %q, %v; want %q", i, r.data, r.err, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("reply %d missing", i)
		}
	}
}

// TestCallIgnoresOtherPeersAndCancelled checks that a Call takes replies only
// from the peer it asked and none after cancel. Replies from one node reach
// the inbox in order, so a later reply from the same node is a barrier.
func TestCallIgnoresOtherPeersAndCancelled(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	c := join(t, a)
	held := make(chan *Msg, 4)
	subscribe(t, b, b.Subject("q"), func(m *Msg) { held <- m })
	subscribe(t, c, c.Subject("q"), func(m *Msg) {
		if err := m.Respond([]byte("from c")); err != nil {
			t.Errorf("Respond: %v", err)
		}
	})
	subscribe(t, c, c.Subject("barrier"), func(m *Msg) {
		if err := m.Respond([]byte("barrier")); err != nil {
			t.Errorf("Respond: %v", err)
		}
	})
	got1 := make(chan string, 4)
	cancel1, err := a.callPlain(a.Subject("q"), b.ID(), []byte("1"), func(b []byte, err error) { got1 <- fmt.Sprintf("%s %v", b, err) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// c answered call 1 (it subscribes to q too) before it answers this.
	if r, err := a.requestPlain(ctx, a.Subject("barrier"), c.ID(), nil); err != nil || string(r) != "barrier" {
		t.Fatalf("barrier: %q, %v", r, err)
	}
	if len(got1) != 0 {
		t.Fatalf("call to b took a reply from c: %s", <-got1)
	}
	mb := <-held
	if err := mb.Respond([]byte("from b")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got1:
		if r != "from b <nil>" {
			t.Fatalf("reply %q", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("reply from b missing")
	}
	cancel1()
	// A late reply after cancel is dropped; b's next reply is the barrier.
	if err := mb.Respond([]byte("late")); err != nil {
		t.Fatal(err)
	}
	subscribe(t, b, b.Subject("barrier2"), func(m *Msg) { _ = m.Respond(nil) })
	if _, err := a.requestPlain(ctx, a.Subject("barrier2"), b.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if len(got1) != 0 {
		t.Fatalf("cancelled call got %s", <-got1)
	}
}

func TestRequestHonoursDeadline(t *testing.T) {
	a := newNet(t, WithRPCTimeout(200*time.Millisecond))
	b := join(t, a)
	// b hears the request but never answers.
	heard := collect(t, b, b.Subject("mute"))
	for _, tc := range []struct {
		name    string
		subject string
		ctx     func() (context.Context, context.CancelFunc)
		min     time.Duration
	}{
		{"mute/ctx", "mute", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 150*time.Millisecond)
		}, 150 * time.Millisecond},
		// Without a deadline the RPC timeout applies.
		{"mute/default", "mute", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now() // before the deadline is set, which counts from then
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := a.requestPlain(ctx, a.Subject(tc.subject), b.ID(), []byte("?"))
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if took < tc.min || took > tc.min+2*time.Second {
				t.Errorf("returned after %v, want about %v", took, tc.min)
			}
		})
	}
	// Nobody listens: the server says so, and the request fails at once.
	ctx0, cancel0 := context.WithTimeout(context.Background(), 5*time.Second)
	start := time.Now()
	if _, err := a.requestPlain(ctx0, a.Subject("nobody"), b.ID(), []byte("?")); !errors.Is(err, ErrUnreachable) {
		t.Errorf("request to nobody: %v, want ErrUnreachable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("request to nobody took %v", took)
	}
	cancel0()
	if m := next(t, heard); !m.ExpectsReply() {
		t.Error("request does not expect a reply")
	}
	// Cancelling the context ends the request at once.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.requestPlain(ctx, a.Subject("mute"), b.ID(), nil)
		errc <- err
	}()
	eventually(t, "request registered", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.calls) == 1
	})
	cancel()
	if err := recvErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Request: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) != 0 {
		t.Errorf("%d calls left registered after timeouts", len(a.calls))
	}
}

func TestClosedNetwork(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	subscribe(t, b, b.Subject("mute"), func(*Msg) {})

	// A request in flight fails with ErrClosed when its network closes.
	errc := make(chan error, 1)
	go func() {
		_, err := b.requestPlain(context.Background(), b.Subject("mute"), b.ID(), nil)
		errc <- err
	}()
	eventually(t, "request registered", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.calls) == 1
	})
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, errc); !errors.Is(err, ErrClosed) {
		t.Errorf("request in flight: %v, want ErrClosed", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close and the failing request took %v", took)
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done not closed")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	if _, err := b.requestPlain(context.Background(), b.Subject("x"), a.ID(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Request: %v", err)
	}
	if err := b.publishPlain(b.Subject("x"), PeerID{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish: %v", err)
	}
	if _, err := b.subscribePlain(b.Subject("x"), func(*Msg) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe: %v", err)
	}
	if _, err := b.callPlain(b.Subject("x"), a.ID(), nil, func([]byte, error) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Call: %v", err)
	}
	if _, err := NewRaftTransport(sealedScope(b, "s"), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("NewRaftTransport: %v", err)
	}
	sc := sealedScope(b, "s")
	if _, err := sc.Subscribe(b.Subject("x"), func(*Msg) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Scope.Subscribe: %v", err)
	}
	if err := sc.Publish(b.Subject("x"), PeerID{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Scope.Publish: %v", err)
	}
	if _, err := sc.Request(context.Background(), b.Subject("x"), a.ID(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Scope.Request: %v", err)
	}
	// The closing node's peers are unaffected.
	got := collect(t, a, a.Subject("still"))
	if err := a.publishPlain(a.Subject("still"), PeerID{}, []byte("up")); err != nil {
		t.Fatal(err)
	}
	next(t, got)
}

func TestCallGetsErrClosedOnce(t *testing.T) {
	a := newNet(t)
	subscribe(t, a, a.Subject("mute"), func(*Msg) {})
	var mu sync.Mutex
	var errs []error
	_, err := a.callPlain(a.Subject("mute"), a.ID(), nil, func(b []byte, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
		t.Errorf("fn got %v, want one ErrClosed", errs)
	}
}

func TestSubscriptionClose(t *testing.T) {
	a := newNet(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished bool
	s := subscribe(t, a, a.Subject("slow"), func(*Msg) {
		close(entered)
		<-release
		finished = true
	})
	if err := a.publishPlain(a.Subject("slow"), PeerID{}, nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	closed := make(chan bool)
	go func() {
		s.Close()
		closed <- finished // Close waited for the handler: no race on finished
	}()
	close(release)
	if !<-closed {
		t.Error("Close returned before the handler in progress")
	}
	s.Close() // idempotent
	a.mu.Lock()
	_, still := a.subs[s]
	a.mu.Unlock()
	if still {
		t.Error("closed subscription still registered")
	}
	// NATS delivers nothing more to it.
	if s.sub.IsValid() {
		t.Error("NATS subscription still valid")
	}
}

// TestSubscribeReadyOnReturn: once Subscribe returns, the server knows the
// subscription, so a message another node publishes next is delivered.
func TestSubscribeReadyOnReturn(t *testing.T) {
	a := newNet(t)
	b := join(t, a)
	acct := a.srv.GlobalAccount()
	deaf, lost := 0, 0
	const tries = 20
	for i := range tries {
		subject := b.Subject("ready", strconv.Itoa(i))
		got := make(chan string, 2)
		s, err := b.subscribePlain(subject, func(m *Msg) { got <- string(m.Data) })
		if err != nil {
			t.Fatal(err)
		}
		if !acct.SubscriptionInterest(subject) {
			deaf++
		}
		publish(t, a, "ready."+strconv.Itoa(i), b.ID(), "first")
		flush(t, b) // now surely subscribed: the barrier is delivered
		publish(t, a, "ready."+strconv.Itoa(i), b.ID(), "barrier")
		select {
		case m := <-got:
			if m != "first" {
				lost++
			}
		case <-time.After(waitTimeout):
			t.Fatal("nothing delivered")
		}
		s.Close()
	}
	if deaf > 0 || lost > 0 {
		t.Errorf("of %d subscriptions, %d were unknown to the server when Subscribe returned, "+
			"and %d lost the first message published to them", tries, deaf, lost)
	}
}

// TestNamespaces runs two networks on one server with the same identities:
// a node only ever hears its own network.
func TestNamespaces(t *testing.T) {
	i1, i2 := NewIdentity(), NewIdentity()
	p1, p2 := i1.PeerID(), i2.PeerID()
	a1 := newNet(t, WithNetwork("alpha"), WithIdentity(i1))
	a2 := join(t, a1, WithNetwork("alpha"), WithIdentity(i2))
	b1 := join(t, a1, WithNetwork("beta"), WithIdentity(i1))
	b2 := join(t, a1, WithNetwork("beta"), WithIdentity(i2))
	if a1.ID() != p1 || b1.ID() != p1 || a2.ID() != p2 || b2.ID() != p2 {
		t.Fatal("one identity, two ids")
	}
	if a1.Subject("x") == b1.Subject("x") {
		t.Fatal("namespaces share subjects")
	}
	gotA := collect(t, a2, a2.Subject("x"))
	gotB := collect(t, b2, b2.Subject("x"))
	if err := a1.publishPlain(a1.Subject("x"), p2, []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	// Sent after "alpha" on the same connection: if beta could hear alpha's
	// subject, "alpha" would reach b2 before this.
	if err := a1.publishPlain(b2.Subject("x"), p2, []byte("barrier")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, gotA); string(m.Data) != "alpha" {
		t.Errorf("a2 got %q", m.Data)
	}
	if m := next(t, gotB); string(m.Data) != "barrier" {
		t.Errorf("b2 got %q first", m.Data)
	}

	// Requests and their replies stay in their network too, although the
	// inboxes are named after the same peer ids.
	echo(t, a2, a2.Subject("who"), "alpha:")
	echo(t, b2, b2.Subject("who"), "beta:")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, tc := range []struct {
		n    *Network
		want string
	}{{a1, "alpha:?"}, {b1, "beta:?"}} {
		for range 5 {
			got, err := tc.n.requestPlain(ctx, tc.n.Subject("who"), p2, []byte("?"))
			if err != nil || string(got) != tc.want {
				t.Fatalf("%s: Request = %q, %v", tc.n.Name(), got, err)
			}
		}
	}

	// Same scope, same secret, same identities: raft RPCs do not cross
	// either.
	ra := newRaftTransport(t, sealedScope(a2, "s"), 0)
	rb := newRaftTransport(t, sealedScope(b2, "s"), 0)
	serve(t, ra, func(rpc raft.RPC) { rpc.Respond(&raft.RequestVoteResponse{Term: 1}, nil) })
	serve(t, rb, func(rpc raft.RPC) { rpc.Respond(&raft.RequestVoteResponse{Term: 2}, nil) })
	for _, tc := range []struct {
		n    *Network
		term uint64
	}{{a1, 1}, {b1, 2}} {
		caller := newRaftTransport(t, sealedScope(tc.n, "s"), 0)
		var resp raft.RequestVoteResponse
		if err := caller.RequestVote("x", ra.LocalAddr(), &raft.RequestVoteRequest{Term: 9}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Term != tc.term {
			t.Errorf("%s: vote answered by term %d", tc.n.Name(), resp.Term)
		}
	}
}

func TestFragmentation(t *testing.T) {
	const maxChunk = 4096
	a := newNet(t, withMaxChunk(maxChunk))
	b := join(t, a, withMaxChunk(maxChunk))
	if a.maxChunk != maxChunk {
		t.Fatalf("maxChunk = %d", a.maxChunk)
	}
	got := collect(t, b, b.Subject("big"))
	wire := capture(t, b, b.Subject("big"))
	// Every frame, plain or sealed, leaves room for what sealing adds.
	single := maxChunk - headerLen - frameSlack // largest unfragmented payload
	chunk := single                             // payload of one fragment
	sizes := []int{0, 1, single - 1, single, single + 1,
		2 * chunk, 2*chunk + 1, 3*chunk - 1, 3 * chunk, 1 << 20, 1<<20 + 7}
	for i, size := range sizes {
		before := a.Stats().MsgsOut
		data := pattern(size, byte(i))
		if err := a.publishPlain(a.Subject("big"), b.ID(), data); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		frames := a.Stats().MsgsOut - before
		want := uint64(1)
		if size > single {
			want = uint64((size + chunk - 1) / chunk)
		}
		if frames != want {
			t.Errorf("size %d went out in %d frames, want %d", size, frames, want)
		}
		for range want {
			if f := nextFrame(t, wire); len(f) > maxChunk {
				t.Fatalf("size %d: a %d-byte frame, over the %d-byte chunk", size, len(f), maxChunk)
			}
		}
		m := next(t, got)
		if !bytes.Equal(m.Data, data) {
			t.Fatalf("size %d arrived as %d bytes, corrupted", size, len(m.Data))
		}
		if m.From != a.ID() {
			t.Errorf("size %d from %s", size, m.From.Short())
		}
	}
	if st := b.Stats(); st.Malformed != 0 {
		t.Errorf("receiver counted %d malformed frames", st.Malformed)
	}
	b.fragMu.Lock()
	defer b.fragMu.Unlock()
	if len(b.frags) != 0 || b.fragMem != 0 {
		t.Errorf("after reassembly %d partial messages, %d bytes held", len(b.frags), b.fragMem)
	}
}

// TestFragmentationConcurrent interleaves the fragments of several large
// messages from one sender, and fragments requests and replies.
func TestFragmentationConcurrent(t *testing.T) {
	a := newNet(t, withMaxChunk(4096))
	b := join(t, a, withMaxChunk(4096))
	got := collect(t, b, b.Subject("big"))
	const senders = 8
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			if err := a.publishPlain(a.Subject("big"), b.ID(), pattern(200<<10+i, byte(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for range senders {
		m := next(t, got)
		i := len(m.Data) - 200<<10
		if i < 0 || i >= senders || seen[i] || !bytes.Equal(m.Data, pattern(200<<10+i, byte(i))) {
			t.Fatalf("message of %d bytes corrupted or repeated", len(m.Data))
		}
		seen[i] = true
	}

	// Large request, large streamed replies.
	subscribe(t, b, b.Subject("rev"), func(m *Msg) {
		for i := range 3 {
			if err := m.Respond(append(bytes.Clone(m.Data), byte(i))); err != nil {
				t.Errorf("Respond: %v", err)
			}
		}
	})
	req := pattern(300<<10, 7)
	replies := make(chan []byte, 3)
	cancel, err := a.callPlain(a.Subject("rev"), b.ID(), req, func(r []byte, err error) {
		if err != nil {
			t.Errorf("reply: %v", err)
		}
		replies <- r
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	for i := range 3 {
		select {
		case r := <-replies:
			if !bytes.Equal(r, append(bytes.Clone(req), byte(i))) {
				t.Fatalf("reply %d corrupted (%d bytes)", i, len(r))
			}
		case <-time.After(waitTimeout):
			t.Fatalf("reply %d missing", i)
		}
	}
}

// TestFragmentationTwoSubscriptions subscribes twice on one node to the
// subject of a fragmented message: each subscription must get it whole. The
// second subscription is held back so that both are between the first and
// the second fragment at once, which happens by chance in real traffic.
func TestFragmentationTwoSubscriptions(t *testing.T) {
	b := newNet(t)
	first := collect(t, b, b.Subject("big"))
	second := collect(t, b, b.Subject("big"))
	held := b.subsFor(t, b.Subject("big"))
	raw := rawConn(t, b)
	from := NewPeerID()
	data := pattern(3000, 3)
	pub := func(body []byte, flags byte) {
		t.Helper()
		if err := raw.Publish(b.Subject("big"), rawFrame(frameVersion, flags, from, 0, body)); err != nil {
			t.Fatal(err)
		}
		if err := raw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	in := b.Stats().MsgsIn
	if len(held) != 2 {
		t.Fatalf("%d subscriptions", len(held))
	}
	held[1].mu.Lock()
	pub(rawFragment(1, 0, 3, data[:1000]), flagFragment)
	eventually(t, "one subscription takes fragment 0", func() bool { return b.Stats().MsgsIn == in+1 })
	held[1].mu.Unlock()
	eventually(t, "the other takes fragment 0", func() bool { return b.Stats().MsgsIn == in+2 })
	pub(rawFragment(1, 1, 3, data[1000:2000]), flagFragment)
	pub(rawFragment(1, 2, 3, data[2000:]), flagFragment)
	pub([]byte("after"), 0) // a barrier for both subscriptions
	for i, ch := range []<-chan *Msg{first, second} {
		m := next(t, ch)
		if !bytes.Equal(m.Data, data) {
			t.Errorf("subscription %d: first message is %d bytes %q, want the %d-byte message",
				i, len(m.Data), trunc(m.Data), len(data))
		}
	}
	if st := b.Stats(); st.Malformed != 0 {
		t.Errorf("%d fragments counted malformed", st.Malformed)
	}
}

// subsFor returns n's subscriptions on subject.
func (n *Network) subsFor(t testing.TB, subject string) []*Subscription {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	var subs []*Subscription
	for s := range n.subs {
		if s.sub.Subject == subject {
			subs = append(subs, s)
		}
	}
	return subs
}

// TestMaxMessageSize sends a message of exactly the limit and one byte more.
func TestMaxMessageSize(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB")
	}
	a := newNet(t)
	b := join(t, a)
	got := collect(t, b, b.Subject("huge"))
	data := pattern(maxMessageSize, 9)
	if err := a.publishPlain(a.Subject("huge"), b.ID(), data); err != nil {
		t.Fatal(err)
	}
	// 64 MiB take several seconds to cross the server under the race
	// detector: wait longer than for anything else.
	select {
	case m := <-got:
		if !bytes.Equal(m.Data, data) {
			t.Fatalf("%d-byte message arrived as %d bytes, corrupted", len(data), len(m.Data))
		}
	case <-time.After(6 * waitTimeout):
		t.Fatal("no message")
	}

	over := make([]byte, maxMessageSize+1)
	before := a.Stats()
	if err := a.publishPlain(a.Subject("huge"), b.ID(), over); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Publish: %v, want ErrTooLarge", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := a.requestPlain(ctx, a.Subject("huge"), b.ID(), over); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Request: %v, want ErrTooLarge", err)
	}
	if after := a.Stats(); after.MsgsOut != before.MsgsOut || after.BytesOut != before.BytesOut {
		t.Errorf("an oversized message was sent: %+v -> %+v", before, after)
	}
	a.mu.Lock()
	if len(a.calls) != 0 {
		t.Errorf("failed Request left %d calls registered", len(a.calls))
	}
	a.mu.Unlock()

	// A reply over the limit fails in Respond.
	errc := make(chan error, 1)
	subscribe(t, b, b.Subject("ask"), func(m *Msg) { errc <- m.Respond(over) })
	stop, err := a.callPlain(a.Subject("ask"), b.ID(), nil, func([]byte, error) { t.Error("got an oversized reply") })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := recvErr(t, errc); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Respond: %v, want ErrTooLarge", err)
	}
}
