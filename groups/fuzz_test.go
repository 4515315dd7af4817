package groups

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/raftconf"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// FuzzControl: any bytes on a member's control subject, or as a reply to
// one of its requests, decode into every control type or fail, without
// panic; a decoded forward is checked against the limits.
func FuzzControl(f *testing.F) {
	for _, seed := range []struct {
		kind byte
		v    any
	}{
		{ctlForward, forward{Session: replica.SessionID{1}, Seq: 1, Cmds: [][]byte{{0xa0}}}},
		{ctlReadIndex, struct{}{}},
		{ctlReadIndex, readIndexRequest{Term: 3}},
		{ctlLeave, leaveRequest{Force: true}},
		{ctlProve, proveRequest{Index: 7}},
		{0, forwardReply{Seq: 1, Kind: replyOutcome, Outcome: replica.Outcome{Status: replica.StatusApplied, Count: 1}}},
		{0, readIndexReply{Index: 3}},
		{0, proveReply{Found: true}},
	} {
		b, err := encodeCtl(seed.kind, seed.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{ctlForward, 0x86, 0x50})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fw forward
		if decodeCtl(data, &fw) == nil {
			_, _ = checkBatch(fw.Cmds)
		}
		var pr proveRequest
		_ = decodeCtl(data, &pr)
		var rr readIndexRequest
		_ = decodeCtl(data, &rr)
		var lr leaveRequest
		_ = decodeCtl(data, &lr)
		if len(data) > 0 {
			var r forwardReply
			if decodeWire(data[1:], &r) == nil {
				_ = r.err().Error()
				_ = r.Outcome.Range()
			}
			var ri readIndexReply
			_ = decodeWire(data[1:], &ri)
			var pv proveReply
			_ = decodeWire(data[1:], &pv)
		}
		if decodeCtl(nil, &fw) == nil {
			t.Fatal("empty control message decoded")
		}
	})
}

// FuzzAnnouncement: any bytes as an announcement decode or fail without
// panic, and a decoded one yields a valid preference.
func FuzzAnnouncement(f *testing.F) {
	b, _ := rsm.Marshal(announcement{Pref: uint8(prefReluctant), Factor: 3, HasState: true, Term: 2, LastIndex: 9, Ticket: "x"})
	f.Add(b)
	f.Add([]byte{0x8a, 0x03, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a announcement
		if decodeWire(data, &a) != nil {
			return
		}
		if p := a.preference(); p.Factor() == 0 {
			t.Fatalf("preference %v with factor 0", p)
		}
	})
}

// FuzzIdentity: any bytes under a member's key, as onIdentity takes them
// (within maxIdentitySize), decode or fail without panic; one that decodes
// and is valid is compared and recorded within the bounds.
func FuzzIdentity(f *testing.F) {
	cfg, err := (&Config{Tickets: &Tickets{Issuer: make(ed25519.PublicKey, ed25519.PublicKeySize)}}).resolve(nil)
	if err != nil {
		f.Fatal(err)
	}
	here := newIdentity(ID{1}, "test.counter.v1", &cfg)
	b, _ := rsm.Marshal(newIdentity(ID{2}, strings.Repeat("é", maxIdentitySignature), &Config{HeartbeatInterval: time.Second}))
	f.Add(b)
	f.Add([]byte{0x88, 0x58, 0x20})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxIdentitySize {
			return
		}
		var a identity
		if decodeWire(data, &a) != nil || !a.valid() {
			return
		}
		var ms mismatches
		for i := range maxMismatches + 2 {
			a.ID[0] = byte(i)
			ms.heard(transport.PeerID{byte(i)}, &a, func() []string { return here.differs(&a) }, time.Now())
			_ = a.differs(&here)
		}
		if l := ms.list(); len(l) > maxMismatches {
			t.Fatalf("%d groups recorded, bound %d", len(l), maxMismatches)
		}
	})
}

// FuzzTicket: any string as a ticket is refused or accepted without panic;
// nothing but a ticket the issuer signed for the peer is accepted.
func FuzzTicket(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	var peer transport.PeerID
	peer[0] = 1
	good, err := IssueTicket(priv, peer, time.Now().Add(time.Hour), "g")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	tk := &Tickets{Issuer: pub, Audience: "g"}
	f.Fuzz(func(t *testing.T, ticket string) {
		// Only what priv signed verifies: the header and claims of good
		// (its signature may be spelled differently in base64).
		signed := good[:strings.LastIndexByte(good, '.')+1]
		if _, err := tk.check(ticket, peer); err == nil && !strings.HasPrefix(ticket, signed) {
			t.Fatalf("forged ticket accepted: %q", ticket)
		}
	})
}

// FuzzStoredConfiguration: any bytes in a stored configuration entry are
// reported, never a panic out of Raft's decoder.
func FuzzStoredConfiguration(f *testing.F) {
	f.Add(raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a", Suffrage: raft.Voter}}}))
	f.Add([]byte{0xff, 0x00})
	f.Add([]byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = raftconf.Decode(data)
	})
}
