package transport

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A node's identity probe is a
// plain message on its card subject, readable by any NATS client. After
// the node restarts (within probeFresh), a stranger replays the previous
// incarnation's probe to the new one: it verifies (same key, another
// epoch, fresh enough), and the node logs that a copy of its data
// directory is starting and counts a duplicate, though none exists. It
// must not: a copy starting now started after the running node.
func TestReplayedProbeRaisesNoAlarm(t *testing.T) {
	hub := newNet(t)
	ident := NewIdentity()
	raw := rawConn(t, hub)
	sub, err := raw.SubscribeSync(hub.cardSubject(ident.PeerID()))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	first := join(t, hub, WithIdentity(ident))
	m, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("no probe seen: %v", err)
	}
	recorded := bytes.Clone(m.Data)
	if len(recorded) != headerLen+probeLen {
		t.Fatalf("recorded %d bytes, not a probe", len(recorded))
	}
	// A normal restart.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	second := join(t, hub, WithIdentity(ident), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	flush(t, second)
	if _, err := raw.Request(second.cardSubject(ident.PeerID()), recorded, waitTimeout); err != nil {
		t.Fatal(err)
	}
	if d := second.Stats().Duplicates; d != 0 || strings.Contains(logs.String(), "another node with this node's identity") {
		t.Fatalf("a replayed probe of the previous incarnation raised the alarm: Duplicates=%d, log:\n%s", d, logs.String())
	}
}
