package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// waitTimeout bounds every wait for a condition that should hold soon. It is
// generous so a loaded machine (-race, -count=20) does not flake; a correct
// run never comes near it.
const waitTimeout = 10 * time.Second

// newNet starts a Network (an embedded server unless opts has WithURL) and
// closes it when the test ends.
func newNet(t testing.TB, opts ...Option) *Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, err := New(ctx, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// join starts a Network on the server of first.
func join(t testing.TB, first *Network, opts ...Option) *Network {
	t.Helper()
	return newNet(t, append([]Option{WithURL(first.URL())}, opts...)...)
}

// flush waits until the server has processed everything n sent so far, in
// particular its subscriptions. Subscribe does not wait for the server, so a
// test flushes before another node publishes to a new subscription.
func flush(t testing.TB, nets ...*Network) {
	t.Helper()
	for _, n := range nets {
		if err := n.nc.FlushTimeout(waitTimeout); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// subscribe subscribes h on n to plain frames, closes the subscription when
// the test ends and flushes so other nodes' messages reach it.
func subscribe(t testing.TB, n *Network, subject string, h Handler) *Subscription {
	t.Helper()
	return subscribeWith(t, n, n.subscribePlain, subject, h)
}

// subscribeIn is subscribe in scope sc: h gets the frames that open in it.
func subscribeIn(t testing.TB, sc *Scope, subject string, h Handler) *Subscription {
	t.Helper()
	return subscribeWith(t, sc.Network(), sc.Subscribe, subject, h)
}

func subscribeWith(t testing.TB, n *Network, sub func(string, Handler) (*Subscription, error), subject string, h Handler) *Subscription {
	t.Helper()
	s, err := sub(subject, h)
	if err != nil {
		t.Fatalf("Subscribe %s: %v", subject, err)
	}
	t.Cleanup(s.Close)
	flush(t, n)
	return s
}

// collect subscribes on subject and returns a channel of delivered messages.
func collect(t testing.TB, n *Network, subject string) <-chan *Msg {
	t.Helper()
	ch := make(chan *Msg, 1024)
	subscribe(t, n, subject, collector(t, subject, ch))
	return ch
}

// collectIn is collect in scope sc; it returns the subscription too.
func collectIn(t testing.TB, sc *Scope, subject string) (<-chan *Msg, *Subscription) {
	t.Helper()
	ch := make(chan *Msg, 1024)
	s := subscribeIn(t, sc, subject, collector(t, subject, ch))
	return ch, s
}

func collector(t testing.TB, subject string, ch chan<- *Msg) Handler {
	return func(m *Msg) {
		select {
		case ch <- m:
		default:
			t.Errorf("collect %s: buffer full", subject)
		}
	}
}

// next returns the next message from ch or fails the test.
func next(t testing.TB, ch <-chan *Msg) *Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitTimeout):
		t.Fatal("no message")
		return nil
	}
}

// empty fails the test if ch holds a message.
func empty(t testing.TB, ch <-chan *Msg) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message on %s from %s: %q", m.Subject, m.From.Short(), trunc(m.Data))
	default:
	}
}

// eventually polls cond until it holds or fails the test.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recvErr waits for one error from ch or fails the test.
func recvErr(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for result")
		return nil
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// pattern returns n deterministic bytes that differ at every offset modulo
// 251, so a misplaced or repeated fragment shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

// rawConn connects to n's server with nats.go directly, bypassing framing.
func rawConn(t testing.TB, n *Network) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatalf("raw connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// rawFrame builds a plain frame by hand, valid or not. Its epoch and counter
// are zero: plain frames are not checked for replays.
func rawFrame(version, flags byte, from PeerID, reqID uint64, body []byte) []byte {
	f := make([]byte, headerLen+len(body))
	f[0] = version
	f[1] = flags
	copy(f[2:34], from[:])
	binary.BigEndian.PutUint64(f[34:42], reqID)
	copy(f[headerLen:], body)
	return f
}

// testSecret seals the scopes tests make unless they name another secret.
var testSecret = NewSecret()

// scopeID names a test scope.
func scopeID(name string) [32]byte { return sha256.Sum256([]byte("mosaik test scope " + name)) }

// sealedScope is n's scope name, sealed with testSecret.
func sealedScope(n *Network, name string) *Scope { return n.Scope(scopeID(name), testSecret) }

// sealFrame builds, by hand, the frame sc's node would send to peer to (or
// to everyone, if to is zero) on subject: sealed in sc, with the node's card
// (so the receiver needs no card request), with any flags and request id the
// caller likes and body as its payload, valid or not. It is how tests put
// hostile bodies from an authenticated sender on the wire. Sealing to a peer
// fetches its card if sc's node does not know it yet.
func sealFrame(t testing.TB, sc *Scope, subject string, to PeerID, flags byte, reqID uint64, body []byte) []byte {
	t.Helper()
	flags |= flagSealed | flagIntro
	if to.IsZero() {
		flags |= flagBroadcast
	}
	var peer *peerEntry
	if !to.IsZero() {
		var err error
		if peer, err = sc.net.cardOf(context.Background(), to); err != nil {
			t.Fatalf("seal frame: %v", err)
		}
	}
	f, err := sc.net.frame(sc, subject, peer, flags, reqID, nil, body)
	if err != nil {
		t.Fatalf("seal frame: %v", err)
	}
	return f
}

// frameCounter returns a frame's epoch and counter.
func frameCounter(f []byte) (epoch, ctr uint64) {
	return binary.BigEndian.Uint64(f[42:50]), binary.BigEndian.Uint64(f[50:58])
}

// capture subscribes on subject with nats.go directly and returns what
// arrives there, frames as they travel. It flushes, so what is published
// from now on is captured.
func capture(t testing.TB, n *Network, subject string) <-chan []byte {
	t.Helper()
	nc := rawConn(t, n)
	ch := make(chan []byte, 4096)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		select {
		case ch <- m.Data:
		default:
			t.Errorf("capture %s: buffer full", subject)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// nextFrame returns the next captured frame or fails the test.
func nextFrame(t testing.TB, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(waitTimeout):
		t.Fatal("no frame captured")
		return nil
	}
}

// quiet waits briefly and fails the test if ch delivers: a bounded wait to
// assert that something does not arrive.
func quiet(t testing.TB, ch <-chan *Msg) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message on %s from %s: %q", m.Subject, m.From.Short(), trunc(m.Data))
	case <-time.After(300 * time.Millisecond):
	}
}

// rawFragment builds a fragment body: message id, index, count, data.
func rawFragment(id uint64, idx, count uint32, data []byte) []byte {
	b := make([]byte, fragHeaderLen+len(data))
	binary.BigEndian.PutUint64(b[0:8], id)
	binary.BigEndian.PutUint32(b[8:12], idx)
	binary.BigEndian.PutUint32(b[12:16], count)
	copy(b[fragHeaderLen:], data)
	return b
}

// lockedBuffer collects a node's logs; the node writes from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
