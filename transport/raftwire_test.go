package transport

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

func TestPeerID(t *testing.T) {
	p := NewPeerID()
	if p.IsZero() || p == NewPeerID() {
		t.Fatal("NewPeerID is zero or repeats")
	}
	s := p.String()
	if len(s) != 64 || p.Short() != s[:8] {
		t.Errorf("String %q, Short %q", s, p.Short())
	}
	q, err := ParsePeerID(s)
	if err != nil || q != p {
		t.Errorf("ParsePeerID(String) = %s, %v", q, err)
	}
	if q, err := ParsePeerID(strings.ToUpper(s)); err != nil || q != p {
		t.Errorf("ParsePeerID(upper case) = %s, %v", q, err)
	}
	for _, bad := range []string{"", "00", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := ParsePeerID(bad); err == nil {
			t.Errorf("ParsePeerID(%q) accepted", bad)
		}
	}
	var zero PeerID
	if !zero.IsZero() {
		t.Error("zero PeerID is not zero")
	}
	lo, hi := PeerID{1}, PeerID{2}
	if lo.Compare(hi) != -1 || hi.Compare(lo) != 1 || lo.Compare(lo) != 0 {
		t.Error("Compare")
	}
}

func TestIsHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		req  raft.AppendEntriesRequest
		want bool
	}{
		{raft.AppendEntriesRequest{Term: 1, Leader: []byte("l")}, true},
		{raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte("l")}, Term: 1}, true},
		{raft.AppendEntriesRequest{Term: 1}, false},                                            // no leader
		{raft.AppendEntriesRequest{Leader: []byte("l")}, false},                                // no term
		{raft.AppendEntriesRequest{Term: 1, Leader: []byte("l"), PrevLogEntry: 1}, false},      // a probe
		{raft.AppendEntriesRequest{Term: 1, Leader: []byte("l"), PrevLogTerm: 1}, false},       // a probe
		{raft.AppendEntriesRequest{Term: 1, Leader: []byte("l"), LeaderCommitIndex: 1}, false}, // a commit
		{raft.AppendEntriesRequest{Term: 1, Leader: []byte("l"), Entries: []*raft.Log{{}}}, false},
	} {
		if got := isHeartbeat(&tc.req); got != tc.want {
			t.Errorf("isHeartbeat(%+v) = %v", tc.req, got)
		}
	}
}

func TestAppendWire(t *testing.T) {
	for _, req := range []*raft.AppendEntriesRequest{
		{},
		{RPCHeader: raft.RPCHeader{ProtocolVersion: 3, ID: []byte{}, Addr: []byte("a")}, Term: 1 << 63,
			Leader: []byte("l"), PrevLogEntry: 1<<64 - 1, PrevLogTerm: 2, LeaderCommitIndex: 3},
		{Term: 2, Entries: []*raft.Log{
			{},
			{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte{0}, Extensions: []byte{}},
			{Index: 2, Type: raft.LogCommand, AppendedAt: time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC)},
			{Index: 3, Type: raft.LogCommand, AppendedAt: time.Date(1677, 9, 21, 0, 12, 43, 145224193, time.UTC)},
			{Index: 4, Type: raft.LogCommand, AppendedAt: time.Now()},
		}},
	} {
		b, err := encodeAppend(req)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != kindAppend {
			t.Fatalf("kind %d", b[0])
		}
		got, err := decodeAppend(b[1:])
		if err != nil {
			t.Fatal(err)
		}
		if err := equalAppend(req, got); err != nil {
			t.Error(err)
		}
		// Empty and absent byte slices keep their difference.
		for i, e := range req.Entries {
			if (e.Data == nil) != (got.Entries[i].Data == nil) || (e.Extensions == nil) != (got.Entries[i].Extensions == nil) {
				t.Errorf("entry %d: nil-ness of Data or Extensions changed", i)
			}
		}
	}

	resp := &raft.AppendEntriesResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: 1, ID: []byte("i"), Addr: []byte("a")},
		Term: 5, LastLog: 6, Success: true, NoRetryBackoff: true}
	b, err := encodeAppendResp(resp)
	if err != nil {
		t.Fatal(err)
	}
	body, err := parseReply(b)
	if err != nil {
		t.Fatal(err)
	}
	got := raft.AppendEntriesResponse{Term: 99, Success: true} // overwritten entirely
	if err := decodeAppendResp(body, &got); err != nil || !reflect.DeepEqual(&got, resp) {
		t.Errorf("decodeAppendResp = %+v, %v", got, err)
	}
	if err := decodeAppendResp([]byte{0xff}, &got); err == nil {
		t.Error("decodeAppendResp accepted junk")
	}
}

func TestParseReply(t *testing.T) {
	if _, err := parseReply(nil); err == nil {
		t.Error("empty reply accepted")
	}
	if _, err := parseReply([]byte{0, 1}); err == nil {
		t.Error("unknown status accepted")
	}
	if b, err := parseReply([]byte{replyOK, 1, 2}); err != nil || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("ok reply = %v, %v", b, err)
	}
	_, err := parseReply(errorReply(errors.New("went wrong")))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "went wrong" || !strings.Contains(err.Error(), "went wrong") {
		t.Errorf("error reply = %v", err)
	}
}

// stubNet is a Network without a connection: enough to build, seal, open
// and decode frames in memory. It counts as closed, so it never asks anyone
// for a card.
func stubNet(t testing.TB, ident *Identity) *Network {
	n := &Network{id: ident.PeerID(), ident: ident, cards: newCards(ident), epoch: 1, faults: NewFaults(),
		frags: map[fragKey]*partial{}, fragAux: fragAux{limits: fragLimits{}.orDefaults()}, fetching: map[PeerID]bool{}, closed: true, log: slog.New(slog.DiscardHandler)}
	if _, err := n.cards.learn(n.id, ident.card); err != nil {
		t.Fatal(err)
	}
	return n
}

// FuzzDecodeFrame feeds arbitrary frames, twice, to a node's decoder on a
// plain subscription and on one of a sealed scope: it never panics; the
// plain one delivers only plain frames, as sent; the sealed one only frames
// sealed in its scope by the sender they name, and never the same frame
// twice.
func FuzzDecodeFrame(f *testing.F) {
	sendID, _ := IdentityFromSeed([32]byte{1})
	recvID, _ := IdentityFromSeed([32]byte{2})
	secret, _ := SecretFromBytes(bytes.Repeat([]byte{7}, 32))
	id := scopeID("fuzz")
	sender := stubNet(f, sendID)
	if _, err := sender.cards.learn(recvID.PeerID(), recvID.card); err != nil {
		f.Fatal(err)
	}
	ssc := sender.Scope(id, secret)
	newReceiver := func(t testing.TB) (n *Network, plain, sealed *Subscription) {
		n = stubNet(t, recvID)
		if _, err := n.cards.learn(sendID.PeerID(), sendID.card); err != nil {
			t.Fatal(err)
		}
		sc := n.Scope(id, secret)
		return n, &Subscription{net: n, windows: map[PeerID]*replayWindow{}},
			&Subscription{net: n, scope: sc, windows: map[PeerID]*replayWindow{}}
	}
	seal := func(to PeerID, flags byte, reqID uint64, frag, data []byte) []byte {
		flags |= flagSealed
		if to.IsZero() {
			flags |= flagBroadcast | flagIntro
		}
		var peer *peerEntry
		if !to.IsZero() {
			peer = sender.cards.get(to)
			if peer == nil {
				f.Fatalf("the sender does not know %s", to.Short())
			}
		}
		fr, err := sender.frame(ssc, "s", peer, flags, reqID, frag, data)
		if err != nil {
			f.Fatal(err)
		}
		return fr
	}
	from := PeerID{1}
	f.Add([]byte{})
	f.Add(rawFrame(frameVersion, 0, from, 0, []byte("hello")))
	f.Add(rawFrame(frameVersion, flagReply, from, 7, []byte("reply")))
	f.Add(rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 0, 2, []byte("a"))))
	f.Add(rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 1, 2, []byte("b"))))
	f.Add(rawFrame(frameVersion, flagFragment, from, 0, rawFragment(1, 0, 1<<32-1, nil)))
	f.Add(rawFrame(1, 0, from, 0, nil))
	f.Add(rawFrame(frameVersion, flagSealed|flagIntro, from, 0, make([]byte, cardLen+sealOverhead)))
	to := recvID.PeerID()
	sealed := [][]byte{
		seal(PeerID{}, 0, 0, nil, []byte("broadcast")),
		seal(to, flagIntro, 5, nil, []byte("request")),
		seal(to, 0, 6, nil, nil),
		seal(to, flagReply, 7, nil, []byte("reply")),
		seal(to, flagIntro|flagFragment, 0, rawFragment(1, 0, 2, nil), []byte("a")),
		seal(PeerID{}, flagFragment, 0, rawFragment(2, 0, 2, nil), []byte("b")),
	}
	// The sealed seeds open: the fuzzer starts from frames that reach past
	// the seal.
	n, _, sub := newReceiver(f)
	for i, fr := range sealed {
		_, ok := n.decode(sub, &nats.Msg{Subject: "s", Data: bytes.Clone(fr)})
		if fr[1]&flagFragment == 0 && !ok {
			f.Fatalf("sealed seed %d does not open", i)
		}
		if st := n.Stats(); st.Rejected != 0 || st.Malformed != 0 {
			f.Fatalf("sealed seed %d: %+v", i, st)
		}
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, plain, sealed := newReceiver(t)
		opened := 0
		for range 2 {
			for _, s := range []*Subscription{plain, sealed} {
				m, ok := n.decode(s, &nats.Msg{Subject: "s", Data: bytes.Clone(frame)})
				if !ok {
					continue
				}
				if !bytes.Equal(m.From[:], frame[2:34]) {
					t.Fatalf("from %x", m.From)
				}
				flags := frame[1]
				if s == plain {
					if flags&(flagSealed|flagIntro|flagBroadcast) != 0 || m.scope != nil {
						t.Fatalf("plain subscription delivered a sealed frame %x", frame)
					}
					if flags&flagFragment == 0 && !bytes.Equal(m.Data, frame[headerLen:]) {
						t.Fatalf("delivered %x from %x", m.Data, frame)
					}
					continue
				}
				if flags&flagSealed == 0 || m.scope != sealed.scope || m.From != sendID.PeerID() {
					t.Fatalf("sealed subscription delivered %x from %s", frame, m.From.Short())
				}
				opened++
			}
		}
		if opened > 1 {
			t.Fatalf("one sealed frame delivered %d times", opened)
		}
		if n.fragMem < 0 || n.fragMem > len(frame) {
			t.Fatalf("fragMem %d after a %d-byte frame", n.fragMem, len(frame))
		}
	})
}

// FuzzRaftWire decodes arbitrary bytes as every wire message: no panics, and
// whatever decodes re-encodes to something that decodes the same.
func FuzzRaftWire(f *testing.F) {
	for _, req := range []*raft.AppendEntriesRequest{
		{Term: 1, Leader: []byte("l")},
		{Term: 2, PrevLogEntry: 3, Entries: []*raft.Log{{Index: 4, Data: []byte("x"), AppendedAt: time.Unix(5, 6)}}},
	} {
		b, err := encodeAppend(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[1:])
	}
	b, _ := marshal(0, snapBegin{ID: 1, Request: &raft.InstallSnapshotRequest{Term: 1}})
	f.Add(b[1:])
	f.Add([]byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeAppend(b); err == nil {
			again, err := encodeAppend(req)
			if err != nil {
				t.Fatal(err)
			}
			req2, err := decodeAppend(again[1:])
			if err != nil {
				t.Fatal(err)
			}
			if err := equalAppend(req, req2); err != nil {
				t.Fatal(err)
			}
		}
		var resp raft.AppendEntriesResponse
		_ = decodeAppendResp(b, &resp)
		_, _ = parseReply(b)
		var sb snapBegin
		_ = decMode.Unmarshal(b, &sb)
		for _, v := range []any{new(raft.RequestVoteRequest), new(raft.RequestPreVoteRequest), new(raft.TimeoutNowRequest),
			new(raft.RequestVoteResponse), new(raft.InstallSnapshotResponse)} {
			_ = decMode.Unmarshal(b, v)
		}
	})
}
