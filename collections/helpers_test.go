package collections

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

func testGroupConfig() *groups.Config {
	return &groups.Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   400 * time.Millisecond, // Raft waits 200 to 400 ms
		BootstrapDelay:    300 * time.Millisecond,
		DeadMemberTimeout: 2 * time.Second,
		ForwardTimeout:    2 * time.Second,
		QueryTimeout:      2 * time.Second,
	}
}

func testOpts() []Option { return []Option{WithGroupConfig(testGroupConfig())} }

// testNet starts an embedded server for the test; nodes connect to it.
type testNet struct {
	t    testing.TB
	hub  *transport.Network
	opts []transport.Option // for every node's network
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	hub, err := transport.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	return &testNet{t: t, hub: hub}
}

// node connects a new node; it closes at the end of the test, after the
// handles opened on it (cleanups run last-in first-out).
func (tn *testNet) node() *transport.Network {
	tn.t.Helper()
	n, err := transport.New(context.Background(), append([]transport.Option{transport.WithURL(tn.hub.URL())}, tn.opts...)...)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { n.Close() })
	return n
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

type closer interface{ Close() error }

func cleanup[T closer](t testing.TB, h T) T {
	t.Cleanup(func() { _ = closeOf(t, h) })
	return h
}

// closeOf closes h, failing the test instead of hanging the whole run if
// Close does not return within 20 seconds (the goroutine is then left
// behind, and goleak reports it too).
func closeOf(t testing.TB, h closer) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Errorf("Close of %T hangs; goroutines of this module:\n%s", h, moduleStacks())
		return nil
	}
}

// moduleStacks returns the stacks of the goroutines running this module's
// code, to show where a hang is.
func moduleStacks() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "mosaik-go/mosaik/groups") || strings.Contains(g, "mosaik-go/mosaik/collections.(") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// tctx is a context for one step of a test: long enough for a slow CI
// machine, short enough that a hang fails the test rather than the run.
func tctx(t testing.TB) context.Context { return ctxT(t, 10*time.Second) }

// openMapW, openMapR, ... open a handle with the fast test timings (opts
// come after them, so a WithGroupConfig in opts replaces them) and close
// it at the end of the test, before its node.
func openMapW[K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *MapWriter[K, V] {
	t.Helper()
	return cleanup(t, must[*MapWriter[K, V]](t)(NewMapWriter[K, V](n, name, append(testOpts(), opts...)...)))
}

func openMapR[K comparable, V any](t testing.TB, n *transport.Network, name string, opts ...Option) *MapReader[K, V] {
	t.Helper()
	return cleanup(t, must[*MapReader[K, V]](t)(NewMapReader[K, V](n, name, append(testOpts(), opts...)...)))
}

func openVecW[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *VecWriter[T] {
	t.Helper()
	return cleanup(t, must[*VecWriter[T]](t)(NewVecWriter[T](n, name, append(testOpts(), opts...)...)))
}

func openVecR[T any](t testing.TB, n *transport.Network, name string, opts ...Option) *VecReader[T] {
	t.Helper()
	return cleanup(t, must[*VecReader[T]](t)(NewVecReader[T](n, name, append(testOpts(), opts...)...)))
}

func openSetW[T comparable](t testing.TB, n *transport.Network, name string, opts ...Option) *SetWriter[T] {
	t.Helper()
	return cleanup(t, must[*SetWriter[T]](t)(NewSetWriter[T](n, name, append(testOpts(), opts...)...)))
}

func openSetR[T comparable](t testing.TB, n *transport.Network, name string, opts ...Option) *SetReader[T] {
	t.Helper()
	return cleanup(t, must[*SetReader[T]](t)(NewSetReader[T](n, name, append(testOpts(), opts...)...)))
}

// waiter is what every handle has: When and Version.
type waiter interface {
	When() *When
	Version() Version
}

// online waits until every handle is online.
func online(t testing.TB, hs ...waiter) {
	t.Helper()
	for i, h := range hs {
		if err := h.When().Online(tctx(t)); err != nil {
			t.Fatalf("handle %d online: %v", i, err)
		}
	}
}

// reach waits until every handle has applied version v.
func reach(t testing.TB, v Version, hs ...waiter) {
	t.Helper()
	for i, h := range hs {
		if err := h.When().Reaches(tctx(t), v); err != nil {
			t.Fatalf("handle %d reaches %d (at %d): %v", i, v, h.Version(), err)
		}
	}
}

// settle waits until every handle has applied the highest version any of
// them has, and returns it.
func settle(t testing.TB, hs ...waiter) Version {
	t.Helper()
	var v Version
	for _, h := range hs {
		v = max(v, h.Version())
	}
	reach(t, v, hs...)
	return v
}

// ok fails the test on err and returns v: ok(t)(w.Insert(ctx, k, v)).
func ok[T any](t testing.TB) func(T, error) T { return must[T](t) }

// entries collects a Seq2 in iteration order.
func entries[K, V any](seq iter.Seq2[K, V]) []kv[K, V] {
	var out []kv[K, V]
	for k, v := range seq {
		out = append(out, kv[K, V]{k, v})
	}
	return out
}

type kv[K, V any] struct {
	K K
	V V
}

// fakeCtx is an rsm.ApplyContext at a fixed position, for driving machines
// directly.
type fakeCtx rsm.Index

func (c fakeCtx) Committed() rsm.Cursor   { return rsm.Cursor{Term: 1, Index: rsm.Index(c) - 1} }
func (c fakeCtx) LogPosition() rsm.Cursor { return rsm.Cursor{Term: 1, Index: rsm.Index(c)} }
func (c fakeCtx) CurrentTerm() rsm.Term   { return 1 }

// isErr fails the test unless errors.Is(err, target).
func isErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// applied applies one command to a machine as a batch of its own: applies
// it, then publishes it.
func applied[C any](m interface {
	rsm.Replier[C]
	rsm.Publisher
}, cmd C, ctx rsm.ApplyContext) reply {
	r := m.ApplyReply(cmd, ctx).(reply)
	m.Publish()
	return r
}
