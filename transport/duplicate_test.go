package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A copied data directory starts a second node with the first one's
// identity. The newcomer must refuse to join, and the node already running
// must say what happened; once the first is gone, the identity is free.
func TestDuplicateIdentityRefused(t *testing.T) {
	var logs lockedBuffer
	ident := NewIdentity()
	hub := newNet(t) // owns the server, so a can go and come back
	a, err := New(t.Context(), WithURL(hub.URL()), WithIdentity(ident), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := New(ctx, WithURL(a.URL()), WithIdentity(ident))
	if err == nil {
		b.Close()
		t.Fatal("a second live node with the same identity joined")
	}
	if !errors.Is(err, ErrDuplicateIdentity) || !strings.Contains(err.Error(), ident.PeerID().Short()) {
		t.Fatalf("err = %v, want ErrDuplicateIdentity naming the peer", err)
	}
	eventually(t, "the running node counts the duplicate", func() bool { return a.Stats().Duplicates == 1 })
	if !strings.Contains(logs.String(), "another node with this node's identity") {
		t.Fatalf("the running node logged no warning:\n%s", logs.String())
	}

	// The running node still works as itself.
	other := join(t, hub)
	echo(t, a, a.Subject("echo"), "")
	flush(t, a)
	if _, err := other.Request(ctx, a.Subject("echo"), a.ID(), []byte("x")); err != nil {
		t.Fatalf("request to the running node: %v", err)
	}

	// Gone, the identity is free again: a restart is not a duplicate.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	again := join(t, other, WithIdentity(ident))
	if again.Stats().Duplicates != 0 {
		t.Fatal("a restart counted as a duplicate")
	}
}

// Only the holder of the key can raise the alarm: a probe signed by another
// key, or an old one replayed, gets the plain card.
func TestDuplicateProbeForgedOrReplayed(t *testing.T) {
	a := newNet(t)
	stranger := NewIdentity()
	raw := rawConn(t, a)

	ask := func(probe []byte) []byte {
		t.Helper()
		m, err := raw.Request(a.cardSubject(a.ID()), rawFrame(frameVersion, 0, stranger.PeerID(), 1, probe), waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) < headerLen {
			t.Fatalf("reply of %d bytes", len(m.Data))
		}
		return m.Data[headerLen:]
	}
	probe := func(key ed25519.PrivateKey, epoch uint64) []byte {
		p := make([]byte, 1+probeNonce, probeLen)
		p[0] = probeVersion
		p = binary.BigEndian.AppendUint64(p, epoch)
		return append(p, ed25519.Sign(key, probeSigned(p[1:1+probeNonce], epoch))...)
	}
	now := uint64(time.Now().UnixNano())
	old := uint64(time.Now().Add(-time.Hour).UnixNano())
	for name, p := range map[string][]byte{
		"forged":   probe(stranger.sign, now),
		"replayed": probe(a.ident.sign, old),
		"short":    probe(a.ident.sign, now)[:probeLen-1],
	} {
		if reply := ask(p); !bytes.Equal(reply, a.ident.card) {
			t.Fatalf("%s probe: the answer is not the bare card (%d bytes)", name, len(reply))
		}
	}
	if d := a.Stats().Duplicates; d != 0 {
		t.Fatalf("Duplicates = %d after forged and replayed probes, want 0", d)
	}
	// The genuine article raises it.
	if reply := ask(probe(a.ident.sign, now)); len(reply) != answerLen {
		t.Fatalf("a genuine probe got %d bytes, want an answer of %d", len(reply), answerLen)
	}
	if d := a.Stats().Duplicates; d != 1 {
		t.Fatalf("Duplicates = %d after a genuine probe, want 1", d)
	}
}
