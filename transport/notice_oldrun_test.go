package transport

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// TestReconnectNoticeOfEarlierRun: a stranger captured a genuine reconnect
// notice of node a. a restarts with its identity (a new epoch); b, which
// never took a notice from a, calls a and waits. The old notice, replayed,
// belongs to a run of a that ended: it must not fail b's call.
func TestReconnectNoticeOfEarlierRun(t *testing.T) {
	hub := newNet(t)
	ident := NewIdentity()
	spy, err := nats.Connect(hub.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	first := join(t, hub, WithIdentity(ident))
	notices, err := spy.SubscribeSync(first.noticeSubject())
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := first.publishPlain(first.noticeSubject(), PeerID{}, first.notice(1)); err != nil {
		t.Fatal(err)
	}
	old, err := notices.NextMsg(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	a := join(t, hub, WithIdentity(ident))
	b := join(t, hub)
	id := scopeID("notice")
	scA, scB := a.Scope(id, testSecret), b.Scope(id, testSecret)
	got := silent(t, scA, a.Subject("quiet"))
	echoIn(t, scA, a.Subject("echo"), "")
	reach(t, scB, a.Subject("echo"), a.ID())
	fromB := requestAsync(scB, a.Subject("quiet"), a.ID())
	waitGot(t, got, 1)

	before := b.Stats().Rejected
	if err := spy.Publish(old.Subject, old.Data); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old notice refused", func() bool {
		select {
		case r := <-fromB:
			t.Fatalf("b's call to a ended by a notice of a's earlier run: %v", r.err)
		default:
		}
		return b.Stats().Rejected > before
	})
}
