package transport

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaik-go/mosaik/internal/promtest"
)

// TestFramesExpireOnTimer: partial messages that never complete expire on
// the network's timer, with no further traffic, and are counted; a network
// closed while the timer is armed stops it (TestMain checks for leaks).
func TestFramesExpireOnTimer(t *testing.T) {
	a := newNet(t)
	b := join(t, a, withFragTTL(100*time.Millisecond))
	in := collect(t, b, b.Subject("in"))
	raw := rawConn(t, b)
	from := NewPeerID()
	for id := range 5 {
		if err := raw.Publish(b.Subject("in"), rawFrame(frameVersion, flagFragment, from, 0,
			rawFragment(uint64(id), 0, 3, make([]byte, 10)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Publish(b.Subject("in"), rawFrame(frameVersion, 0, from, 0, []byte("barrier"))); err != nil {
		t.Fatal(err)
	}
	expect(t, in, "barrier")
	if p, by := fragState(b); p != 5 || by != 50 {
		t.Fatalf("%d partial messages holding %d bytes, want 5 holding 50", p, by)
	}
	before := b.Stats().Malformed
	eventually(t, "the partial messages to expire", func() bool {
		p, _ := fragState(b)
		return p == 0
	})
	if got := b.Stats().Malformed - before; got != 5 {
		t.Errorf("%d expired partial messages counted, want 5", got)
	}
	if _, by := fragState(b); by != 0 {
		t.Errorf("%d bytes held after expiry", by)
	}

	// Armed again, then closed.
	c := join(t, a, withFragTTL(time.Hour))
	inc := collect(t, c, c.Subject("in"))
	if err := raw.Publish(c.Subject("in"), rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 0, 3, nil))); err != nil {
		t.Fatal(err)
	}
	if err := raw.Publish(c.Subject("in"), rawFrame(frameVersion, 0, from, 0, []byte("barrier"))); err != nil {
		t.Fatal(err)
	}
	expect(t, inc, "barrier")
	c.fragMu.Lock()
	armed := c.fragAux.armed
	c.fragMu.Unlock()
	if !armed {
		t.Error("the expiry timer is not armed")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.fragAux.armed || len(c.frags) != 0 {
		t.Errorf("after Close: armed %v, %d partial messages", c.fragAux.armed, len(c.frags))
	}
}

// TestFramesSenderCap: one sender's partial messages on a subscription are
// capped; its next one evicts its oldest, which is counted (Stats.Dropped,
// the metric) and logged once per interval, while another sender's
// message on the same subscription is unaffected.
func TestFramesSenderCap(t *testing.T) {
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	a := newNet(t)
	b := join(t, a, WithMetrics(reg), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	in := collect(t, b, b.Subject("in"))
	raw := rawConn(t, b)
	flooder, honest := NewPeerID(), NewPeerID()
	pub := func(f []byte) {
		t.Helper()
		if err := raw.Publish(b.Subject("in"), f); err != nil {
			t.Fatal(err)
		}
	}
	// The honest sender starts a message, the flooder starts many.
	pub(rawFrame(frameVersion, flagFragment, honest, 0, rawFragment(1, 0, 2, []byte("hel"))))
	const starts = 3 * maxSenderPartials
	for id := range starts {
		pub(rawFrame(frameVersion, flagFragment, flooder, 0, rawFragment(uint64(id), 0, 2, []byte("x"))))
	}
	pub(rawFrame(frameVersion, flagFragment, honest, 0, rawFragment(1, 1, 2, []byte("lo"))))
	expect(t, in, "hello")
	// The flooder's last messages are still whole: its newest complete.
	pub(rawFrame(frameVersion, flagFragment, flooder, 0, rawFragment(starts-1, 1, 2, []byte("y"))))
	expect(t, in, "xy")
	// Its oldest were evicted: their ends are malformed.
	pub(rawFrame(frameVersion, flagFragment, flooder, 0, rawFragment(0, 1, 2, []byte("y"))))
	pub(rawFrame(frameVersion, 0, flooder, 0, []byte("barrier")))
	expect(t, in, "barrier")

	st := b.Stats()
	if st.Dropped != starts-maxSenderPartials {
		t.Errorf("dropped %d partial messages, want %d", st.Dropped, starts-maxSenderPartials)
	}
	if st.Malformed != 1 {
		t.Errorf("%d malformed, want 1", st.Malformed)
	}
	if p, _ := fragState(b); p != maxSenderPartials-1 {
		t.Errorf("%d partial messages held, want %d", p, maxSenderPartials-1)
	}
	lines := strings.Count(logs.String(), "messages dropped over a bound")
	if lines != 1 {
		t.Errorf("%d log lines about drops, want 1 per interval:\n%s", lines, logs.String())
	}
	if got := promtest.Sum(t, reg, "mosaik_transport_dropped_messages_total", "reason", dropSenderPartials); got != float64(st.Dropped) {
		t.Errorf("metric says %v dropped, Stats %d", got, st.Dropped)
	}
}

// TestFramesSlowConsumerCounted: a subscription whose handler falls more
// than pendingMsgsLimit frames behind loses frames, and the loss is
// counted (Stats.SlowConsumer, Stats.PendingDropped, the metric).
func TestFramesSlowConsumerCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newNet(t)
	b := join(t, a, WithMetrics(reg))
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	got := make(chan struct{}, 1)
	subscribe(t, b, b.Subject("slow"), func(m *Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
		<-release
	})
	raw := rawConn(t, b)
	f := rawFrame(frameVersion, 0, NewPeerID(), 0, []byte("x"))
	for range pendingMsgsLimit + 1000 {
		if err := raw.Publish(b.Subject("slow"), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "frames to be dropped", func() bool {
		st := b.Stats()
		return st.SlowConsumer > 0 && st.PendingDropped > 0
	})
	free()
	st := b.Stats()
	t.Logf("%+v", st)
	if got := promtest.Sum(t, reg, "mosaik_transport_dropped_messages_total", "reason", dropSlowConsumer); got < 1 {
		t.Errorf("metric says %v dropped for a slow consumer", got)
	}
}
