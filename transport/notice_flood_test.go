package transport

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestReconnectNoticeFloodBounded: while b waits on a, anyone on the
// server can publish notices claiming to come from a. Each one b checks
// costs a signature verification (some 50 µs), against the microsecond an
// unsealed frame costs elsewhere: the checks per sender must be bounded.
func TestReconnectNoticeFloodBounded(t *testing.T) {
	hub := newNet(t)
	a := join(t, hub)
	b := join(t, hub)
	id := scopeID("notice")
	scA, scB := a.Scope(id, testSecret), b.Scope(id, testSecret)
	got := silent(t, scA, a.Subject("quiet"))
	echoIn(t, scA, a.Subject("echo"), "")
	reach(t, scB, a.Subject("echo"), a.ID())
	fromB := requestAsync(scB, a.Subject("quiet"), a.ID())
	waitGot(t, got, 1)
	spy, err := nats.Connect(hub.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	forged := make([]byte, headerLen, headerLen+noticeLen)
	a.putHeader(forged, 0, 0) // a's id, as anyone can write it
	forged = append(forged, make([]byte, noticeLen)...)
	forged[headerLen] = noticeVersion
	const n = 2000
	before, start := b.Stats().Rejected, time.Now()
	for range n {
		if err := spy.Publish(b.noticeSubject(), forged); err != nil {
			t.Fatal(err)
		}
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the forged notices dropped", func() bool { return b.Stats().Rejected-before >= n*9/10 })
	select {
	case r := <-fromB:
		t.Fatalf("b's call ended: %v", r.err)
	default:
	}
	most := noticeBurst + uint64(noticeRate*time.Since(start).Seconds()) + 1
	if v := b.noticeChecks.Load(); v > most {
		t.Errorf("%d forged notices cost %d signature checks, want at most %d", n, v, most)
	}
}
