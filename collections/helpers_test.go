package collections

import (
	"context"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

func testGroupConfig() *groups.Config {
	return &groups.Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   200 * time.Millisecond,
		BootstrapDelay:    300 * time.Millisecond,
		DeadMemberTimeout: 2 * time.Second,
		ForwardTimeout:    2 * time.Second,
		QueryTimeout:      2 * time.Second,
	}
}

func testOpts() []Option { return []Option{WithGroupConfig(testGroupConfig())} }

// testNet starts an embedded server for the test; nodes connect to it.
type testNet struct {
	t   testing.TB
	hub *transport.Network
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
	n, err := transport.New(context.Background(), transport.WithURL(tn.hub.URL()))
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
	t.Cleanup(func() { h.Close() })
	return h
}
