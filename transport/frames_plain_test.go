package transport

import (
	"bytes"
	"testing"
	"time"
)

// A plain
// subscription (every node has one: its card subject) reassembles
// fragments before anything authenticates them, under whatever sender id
// the frame names. A stranger without any scope key sends one tiny first
// fragment per spoofed sender id: 8 per id stay within the per-sender cap,
// and 16384 of them (about a megabyte) fill the node-wide count of partial
// messages. Until they expire (fragTTL, 30 s; the stranger simply sends
// again), every new fragmented message to the node is dropped, including
// sealed ones from members: a Raft AppendEntries or any reply over one
// NATS payload never arrived. Plain partials now have a budget of their
// own (maxPlainPartials), which sealed messages never share.
func TestStrangerPartialsDoNotBlockSealedMessages(t *testing.T) {
	a := newNet(t, withMaxChunk(64<<10))
	b := join(t, a)
	sa, sb := sealedScope(a, "victim"), sealedScope(b, "victim")
	got, _ := collectIn(t, sb, b.Subject("in"))
	flush(t, b)
	if err := sa.Publish(b.Subject("in"), b.ID(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	next(t, got)

	raw := rawConn(t, b)
	var from PeerID
	for i := range maxPartials {
		if i%maxSenderPartials == 0 {
			from = NewPeerID() // spoofed, never checked on a plain subject
		}
		f := rawFrame(frameVersion, flagFragment, from, 0, rawFragment(uint64(i), 0, 2, []byte{0}))
		if err := raw.Publish(b.cardSubject(b.ID()), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stranger's partials to fill their budget", func() bool {
		p, _ := fragState(b)
		return p >= maxPlainPartials && b.Stats().Dropped > 0
	})
	if p, _ := fragState(b); p > maxPlainPartials {
		t.Fatalf("%d plain partial messages held, budget %d", p, maxPlainPartials)
	}

	data := pattern(256<<10, 7) // four fragments
	if err := sa.Publish(b.Subject("in"), b.ID(), data); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if !bytes.Equal(m.Data, data) {
			t.Fatalf("message corrupted")
		}
	case <-time.After(waitTimeout):
		p, by := fragState(b)
		t.Fatalf("a member's sealed 256 KiB message never arrived: a stranger's %d partial messages (%d bytes, spoofed senders) hold the node-wide bound; %+v", p, by, b.Stats())
	}
}
