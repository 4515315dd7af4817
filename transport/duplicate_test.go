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
	if _, err := other.requestPlain(ctx, a.Subject("echo"), a.ID(), []byte("x")); err != nil {
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

// Any NATS client can send junk probes to a node's card subject: a probe
// that is stale, from the future, or claims the node's own epoch is
// refused before its signature is checked, so it costs no verification
// (which, with the message it verifies, allocates).
func TestJunkProbesCostNoSignatureCheck(t *testing.T) {
	ident := NewIdentity()
	n := stubNet(t, ident)
	n.epoch = uint64(time.Now().UnixNano())
	junk := func(epoch uint64) []byte {
		p := make([]byte, probeLen)
		p[0] = probeVersion
		binary.BigEndian.PutUint64(p[1+probeNonce:], epoch)
		return p
	}
	for name, p := range map[string][]byte{
		"stale":       junk(uint64(time.Now().Add(-time.Hour).UnixNano())),
		"future":      junk(uint64(time.Now().Add(time.Hour).UnixNano())),
		"own epoch":   junk(n.epoch),
		"zero epoch":  junk(0),
		"bad version": append([]byte{probeVersion + 1}, junk(n.epoch + 1)[1:]...),
	} {
		m := &Msg{Data: p, net: n}
		if allocs := testing.AllocsPerRun(20, func() {
			if n.answerProbe(m) {
				t.Fatalf("%s probe answered", name)
			}
		}); allocs != 0 {
			t.Errorf("%s probe: %v allocations: its signature was checked", name, allocs)
		}
	}
}

// probeIdentity ends with its caller's context: New must not go on as if
// the identity were free when it was told to stop.
func TestProbeEndsWithParentContext(t *testing.T) {
	n := newNet(t)
	raw := rawConn(t, n)
	// Someone listens on the card subject and never answers: the probe
	// waits.
	sub, err := raw.SubscribeSync(n.cardSubject(n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := n.probeIdentity(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe after its caller's context ended: %v, want %v", err, context.DeadlineExceeded)
	}
	// Its own timeout, with the caller's context alive, means nobody
	// holds the identity.
	if err := n.probeIdentity(t.Context()); err != nil {
		t.Fatalf("probe timed out: %v, want nil", err)
	}
}
