package collections

// Helpers of the adversarial suite in trust_test.go: a three-node cluster
// of one map, and what a rogue who knows the collection's name and the
// NATS URL, but not its secret, can build by hand: plain frames, frames
// sealed in a scope of its own, forged frames that claim another sender,
// and the groups package's control messages and announcements, encoded
// from the wire format (groups/wire.go) since they are not exported.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/nodekey"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// trustName is the collection every node of the suite opens.
const trustName = "secrets"

// trustConfig has slower timings than testGroupConfig: the suite asserts
// that terms never change, so a loaded machine (the race detector, a CPU
// hog) must not miss heartbeats on its own. Raft's heartbeat timeout is ten
// heartbeats: one second.
func trustConfig(log *slog.Logger) *groups.Config {
	return &groups.Config{
		HeartbeatInterval: 100 * time.Millisecond,
		ElectionTimeout:   time.Second,
		BootstrapDelay:    300 * time.Millisecond,
		DeadMemberTimeout: 2 * time.Second,
		ForwardTimeout:    3 * time.Second,
		QueryTimeout:      3 * time.Second,
		Logger:            log,
	}
}

// trustLog is a log a test can read while the node writes it.
type trustLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *trustLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *trustLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *trustLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// trForeignWarning is part of the warning a member logs when it hears
// messages of its group that do not open with its secret.
const trForeignWarning = "do not open with this member's secret"

type trustNode struct {
	net *transport.Network
	w   *MapWriter[string, string]
	log *trustLog
}

func (n *trustNode) id() transport.PeerID { return n.net.ID() }

// trustCluster is three nodes, each with a writer of trustName: node 0
// embeds the NATS server, the others connect to it.
type trustCluster struct {
	secret transport.Secret // zero: an open collection
	url    string
	nodes  []*trustNode
	want   map[string]string // what every replica must hold
	writes atomic.Int64
}

// newTrustCluster starts the server, calls beforeOpen (to let a sniffer
// subscribe before any group traffic), opens the collection on three nodes
// and waits until they are online and agree on a first write.
func newTrustCluster(t *testing.T, secret transport.Secret, beforeOpen func(url, network string)) *trustCluster {
	t.Helper()
	c := &trustCluster{secret: secret, want: map[string]string{}}
	n0, err := transport.New(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n0.Close() })
	c.url = n0.URL()
	if beforeOpen != nil {
		beforeOpen(c.url, n0.Name())
	}
	nets := []*transport.Network{n0}
	for range 2 {
		n, err := transport.New(tctx(t), transport.WithURL(c.url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nets = append(nets, n)
	}
	for _, n := range nets {
		log := &trustLog{}
		opts := []Option{WithGroupConfig(trustConfig(log.logger()))}
		if !secret.IsZero() {
			opts = append(opts, WithSecret(secret))
		}
		w := cleanup(t, must[*MapWriter[string, string]](t)(NewMapWriter[string, string](n, trustName, opts...)))
		c.nodes = append(c.nodes, &trustNode{net: n, w: w, log: log})
	}
	for _, n := range c.nodes {
		if err := n.w.When().Online(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("node %s online: %v", n.id().Short(), err)
		}
	}
	c.write(t, c.leader(t), "founded", "yes")
	// Let every member know every other's announcement, and the leader
	// every member's replication, before anything is compared.
	trWait(t, 10*time.Second, "three voters seen by everyone", func() bool {
		for _, n := range c.nodes {
			if len(trustVoters(n.w)) != 3 || len(n.w.Members()) != 3 {
				return false
			}
		}
		return true
	})
	return c
}

func (c *trustCluster) writers() []waiter {
	out := make([]waiter, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.w
	}
	return out
}

// leader returns the node every member names as leader, waiting for one.
func (c *trustCluster) leader(t testing.TB) *trustNode {
	t.Helper()
	var l *trustNode
	trWait(t, 10*time.Second, "an agreed leader", func() bool {
		l = nil
		var first transport.PeerID
		for i, n := range c.nodes {
			p, ok := n.w.Leader()
			if !ok || (i > 0 && p != first) {
				return false
			}
			first = p
		}
		for _, n := range c.nodes {
			if n.id() == first && n.w.g.IsLeader() {
				l = n
			}
		}
		return l != nil
	})
	return l
}

// followers returns the nodes but l.
func (c *trustCluster) followers(l *trustNode) []*trustNode {
	var out []*trustNode
	for _, n := range c.nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

func (c *trustCluster) ids() []transport.PeerID {
	out := make([]transport.PeerID, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.id()
	}
	slices.SortFunc(out, transport.PeerID.Compare)
	return out
}

// write sets key on node n and waits until every replica has it.
func (c *trustCluster) write(t testing.TB, n *trustNode, key, value string) Version {
	t.Helper()
	v, err := n.w.Insert(tctx(t), key, value)
	if err != nil {
		t.Fatalf("write %s on %s: %v", key, n.id().Short(), err)
	}
	c.want[key] = value
	reach(t, v, c.writers()...)
	return v
}

// checkContents makes a real write, waits until every replica applied it
// and checks that every replica holds exactly what the real writes put
// there: nothing an attacker sent was applied anywhere.
func (c *trustCluster) checkContents(t testing.TB, what string) Version {
	t.Helper()
	v := c.write(t, c.leader(t), fmt.Sprintf("check-%d", c.writes.Add(1)), what)
	for _, n := range c.nodes {
		got := map[string]string{}
		for k, v := range n.w.All() {
			got[k] = v
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: replica %s holds %v, want %v", what, n.id().Short(), got, c.want)
		}
	}
	return v
}

// trustView is what must not change under attack.
type trustView struct {
	terms  []uint64
	leader transport.PeerID
}

func (c *trustCluster) view(t testing.TB) trustView {
	t.Helper()
	l := c.leader(t)
	v := trustView{leader: l.id()}
	for _, n := range c.nodes {
		v.terms = append(v.terms, n.w.g.Status().Term)
	}
	return v
}

// stableErr reports how the nodes' terms or leader differ from before.
func (c *trustCluster) stableErr(before trustView) error {
	var terms []uint64
	for _, n := range c.nodes {
		terms = append(terms, n.w.g.Status().Term)
		if p, _ := n.w.Leader(); p != before.leader {
			return fmt.Errorf("node %s follows %s, not %s", n.id().Short(), p.Short(), before.leader.Short())
		}
	}
	if !slices.Equal(terms, before.terms) {
		return fmt.Errorf("terms changed from %v to %v", before.terms, terms)
	}
	return nil
}

// votersErr reports a node that does not see the three nodes, and only
// them, as voters; with exact, also one that sees any other member.
func (c *trustCluster) votersErr(exact bool) error {
	want := c.ids()
	for _, n := range c.nodes {
		if got := trustVoters(n.w); !slices.Equal(got, want) {
			return fmt.Errorf("node %s sees voters %s, want %s", n.id().Short(), trShort(got), trShort(want))
		}
		if ms := n.w.Members(); exact && len(ms) != len(want) {
			return fmt.Errorf("node %s sees %d members: %v", n.id().Short(), len(ms), ms)
		}
	}
	return nil
}

// checkUnchanged fails unless every node still has the terms of before,
// follows the same leader, and has exactly the three nodes as members.
func (c *trustCluster) checkUnchanged(t testing.TB, what string, before trustView) {
	t.Helper()
	if err := c.stableErr(before); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if err := c.votersErr(true); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// rejected sums Stats().Rejected of nodes.
func trRejected(nodes ...*trustNode) uint64 {
	var sum uint64
	for _, n := range nodes {
		sum += n.net.Stats().Rejected
	}
	return sum
}

// trWaitRejected waits until the nodes' rejected frames reach at least want.
func trWaitRejected(t testing.TB, what string, want uint64, nodes ...*trustNode) {
	t.Helper()
	trWait(t, 60*time.Second, fmt.Sprintf("%s: %d frames rejected", what, want), func() bool {
		return trRejected(nodes...) >= want
	})
}

func trustVoters(w *MapWriter[string, string]) []transport.PeerID {
	var out []transport.PeerID
	for _, m := range w.Members() {
		if m.Voter {
			out = append(out, m.Peer)
		}
	}
	slices.SortFunc(out, transport.PeerID.Compare)
	return out
}

func trShort(ps []transport.PeerID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Short()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// trWait polls cond until it holds, failing the test after d.
func trWait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// trHold checks cond every few milliseconds for d (a bounded "nothing
// happens" window) and fails the test, once, if it does not hold.
func trHold(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if err := cond(); err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The rogue.

// rogueConn connects to the server with nats.go, as anyone can.
func rogueConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("rogue connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// rogueNet is a transport node of the rogue's, with an identity of its own.
func rogueNet(t testing.TB, url string, opts ...transport.Option) *transport.Network {
	t.Helper()
	n, err := transport.New(tctx(t), append([]transport.Option{transport.WithURL(url)}, opts...)...)
	if err != nil {
		t.Fatalf("rogue node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// discoverGroup finds the collection's group the way a rogue does: its
// id is in every member's public status answer.
func discoverGroup(t testing.TB, rogue *transport.Network, name string) groups.ID {
	t.Helper()
	var id groups.ID
	trWait(t, 10*time.Second, "the group id in status answers", func() bool {
		nodes, err := rogue.Survey(ctxT(t, 2*time.Second))
		if err != nil {
			return false
		}
		for _, n := range nodes {
			var gs []groups.Status
			if cbor.Unmarshal(n.Sections[groups.StatusSection], &gs) != nil {
				continue
			}
			for _, g := range gs {
				if g.Labels["name"] == name {
					id = g.ID
					return true
				}
			}
		}
		return false
	})
	return id
}

// rogueRaft is a Raft transport of the rogue's node in scope sc: it sends
// Raft RPCs sealed in sc, and answers any it gets with an error.
func rogueRaft(t testing.TB, sc *transport.Scope, timeout time.Duration) *transport.RaftTransport {
	t.Helper()
	rt, err := transport.NewRaftTransport(sc, timeout)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case rpc := <-rt.Consumer():
				rpc.Respond(nil, fmt.Errorf("rogue"))
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = rt.Close()
		close(done)
		wg.Wait()
	})
	return rt
}

func trSubject(net string, parts ...string) string {
	return net + "." + strings.Join(parts, ".")
}

// Frames by hand (see transport/message.go).
const (
	trFrameVersion  = 2
	trHeaderLen     = 58
	trCardLen       = 65 + ed25519.SignatureSize
	trFlagSealed    = 1 << 2
	trFlagIntro     = 1 << 3
	trFlagBroadcast = 1 << 4
)

var rogueCounter atomic.Uint64

// trPlainFrame is a frame as a node sends it outside any scope, claiming to
// come from from.
func trPlainFrame(from transport.PeerID, flags byte, reqID uint64, body []byte) []byte {
	f := make([]byte, trHeaderLen, trHeaderLen+len(body))
	f[0] = trFrameVersion
	f[1] = flags
	copy(f[2:34], from[:])
	binary.BigEndian.PutUint64(f[34:42], reqID)
	binary.BigEndian.PutUint64(f[42:50], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(f[50:58], rogueCounter.Add(1))
	return append(f, body...)
}

// trJunkSealed is a frame that claims to be sealed by from: its "ciphertext"
// is random.
func trJunkSealed(from transport.PeerID, reqID uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return trPlainFrame(from, trFlagSealed, reqID, b)
}

// trImpersonate rewrites a frame the rogue's node sealed so that its header
// names as as the sender. With dropIntro the rogue's card is cut out too,
// so the receiver uses as's real card.
func trImpersonate(f []byte, as transport.PeerID, dropIntro bool) []byte {
	g := bytes.Clone(f)
	copy(g[2:34], as[:])
	if dropIntro && g[1]&trFlagIntro != 0 {
		g[1] &^= trFlagIntro
		g = append(g[:trHeaderLen:trHeaderLen], g[trHeaderLen+trCardLen:]...)
	}
	return g
}

func trSender(f []byte) transport.PeerID {
	var p transport.PeerID
	if len(f) >= trHeaderLen {
		copy(p[:], f[2:34])
	}
	return p
}

// forger holds an identity's keys, to build sealed broadcasts by hand: in
// an open scope anyone can derive the broadcast key, and only the Ed25519
// signature inside tells who sent the frame.
type trForger struct {
	id   transport.PeerID
	sign ed25519.PrivateKey
	card []byte
}

func newTrForger(t testing.TB) *trForger {
	t.Helper()
	var seed [nodekey.SeedSize]byte
	_, _ = rand.Read(seed[:])
	sign := nodekey.Signing(seed)
	dh, err := nodekey.Exchange(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := sign.Public().(ed25519.PublicKey)
	card := []byte{1}
	card = append(card, pub...)
	card = append(card, dh.PublicKey().Bytes()...)
	card = append(card, ed25519.Sign(sign, append([]byte("mosaik.card.v1\x00"), card...))...)
	if len(card) != trCardLen {
		t.Fatalf("card of %d bytes", len(card))
	}
	// The same identity, as transport builds it: the forged card must be
	// the real one.
	ident, err := transport.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	f := &trForger{id: transport.PeerID(nodekey.ID(pub)), sign: sign, card: card}
	if ident.PeerID() != f.id {
		t.Fatal("forger: peer id differs from transport's")
	}
	return f
}

// broadcast builds a broadcast on subject in the scope of group id sealed
// with secret (zero: open), whose header names claim as the sender, signed
// with f's key. With intro, f's card follows the header.
func (f *trForger) broadcast(id groups.ID, secret []byte, subject string, claim transport.PeerID, intro bool, payload []byte) []byte {
	if secret == nil {
		secret = make([]byte, 32)
	}
	gk, err := hkdf.Key(sha256.New, secret, id[:], "mosaik.scope.key.v1", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	bk, err := hkdf.Key(sha256.New, gk, nil, "mosaik.scope.broadcast.v1", chacha20poly1305.KeySize)
	if err != nil {
		panic(err)
	}
	aead, err := chacha20poly1305.NewX(bk)
	if err != nil {
		panic(err)
	}
	flags := byte(trFlagSealed | trFlagBroadcast)
	if intro {
		flags |= trFlagIntro
	}
	fr := trPlainFrame(claim, flags, 0, nil)
	if intro {
		fr = append(fr, f.card...)
	}
	ad := append(bytes.Clone(fr), subject...)
	plain := append(bytes.Clone(payload), ed25519.Sign(f.sign, append(bytes.Clone(ad), payload...))...)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	copy(nonce[0:16], fr[42:58])
	copy(nonce[16:24], fr[2:10])
	return aead.Seal(fr, nonce, plain, ad)
}

// The groups wire format (groups/wire.go), encoded by hand.

const (
	trCtlForward byte = 1
	trCtlLeave   byte = 3
	trPrefNormal      = 1
)

type trWireForward struct {
	_       struct{} `cbor:",toarray"`
	Session replica.SessionID
	Seq     uint64
	Base    uint64
	Attempt uint32
	Cmds    [][]byte
	Local   bool
}

type trWireForwardReply struct {
	_       struct{} `cbor:",toarray"`
	Seq     uint64
	Attempt uint32
	Kind    uint8
	First   rsm.Index
	Outcome replica.Outcome
	Code    uint8
	Msg     string
}

type trWireLeave struct {
	_     struct{} `cbor:",toarray"`
	Force bool
}

type trWireReadIndexReply struct {
	_     struct{} `cbor:",toarray"`
	Index rsm.Index
	Code  uint8
	Msg   string
}

type trWireAnnouncement struct {
	_         struct{} `cbor:",toarray"`
	Pref      uint8
	Factor    uint32
	HasState  bool
	Leader    transport.PeerID
	Term      uint64
	LastIndex uint64
	Applied   rsm.Index
	Leaving   bool
	Cluster   replica.ClusterID
	Ticket    string
}

func trCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := rsm.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgedInsert is the encoded map command setting key to value.
func forgedInsert(t testing.TB, key, value string) []byte {
	return trCBOR(t, mapCmd[string, string]{Op: mapInsert, Key: key, Value: &value})
}

// forwardMsg is a control message handing the leader a batch that sets key
// to value, from a fresh session.
func forwardMsg(t testing.TB, key, value string) []byte {
	t.Helper()
	var s replica.SessionID
	_, _ = rand.Read(s[:])
	return append([]byte{trCtlForward}, trCBOR(t, trWireForward{Session: s, Seq: 1, Cmds: [][]byte{forgedInsert(t, key, value)}})...)
}

func leaveMsg(t testing.TB) []byte {
	return append([]byte{trCtlLeave}, trCBOR(t, trWireLeave{Force: true})...)
}

// forgedEntry is a Raft log entry at index whose batch sets key to value.
func forgedEntry(t testing.TB, index, term uint64, key, value string) *raft.Log {
	t.Helper()
	var s replica.SessionID
	_, _ = rand.Read(s[:])
	data := trCBOR(t, replica.Entry{Session: s, Seq: 1, First: rsm.Index(index), Cmds: [][]byte{forgedInsert(t, key, value)}})
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: data}
}

// Raft RPC kinds (transport/raftwire.go), for plain frames.
const (
	trKindAppend     byte = 1
	trKindTimeoutNow byte = 4
	trKindSnapBegin  byte = 5
	trKindSnapChunk  byte = 6
)

func raftMsg(t testing.TB, kind byte, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{kind}, b...)
}

func trHeader(p transport.PeerID) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(p.String()), Addr: []byte(p.String())}
}

func trAddr(p transport.PeerID) (raft.ServerID, raft.ServerAddress) {
	return raft.ServerID(p.String()), raft.ServerAddress(p.String())
}

// sniffer records every message on the network's subjects and whether any
// carries one of the needles in its clear bytes.
type trSniffer struct {
	sub     *nats.Subscription
	needles [][]byte

	mu       sync.Mutex
	n        int
	subjects map[string]int // message count per subject kind (second token)
	leaks    []string
	plain    map[string]bool // plain-text probes seen
}

func trSniff(t testing.TB, nc *nats.Conn, network string, needles ...[]byte) *trSniffer {
	t.Helper()
	s := &trSniffer{needles: needles, subjects: map[string]int{}, plain: map[string]bool{}}
	sub, err := nc.Subscribe(network+".>", func(m *nats.Msg) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n++
		if parts := strings.SplitN(m.Subject, ".", 3); len(parts) > 1 {
			s.subjects[parts[1]]++
		}
		all := [][]byte{m.Data, []byte(m.Subject), []byte(m.Reply)}
		for k, vs := range m.Header {
			all = append(all, []byte(k))
			for _, v := range vs {
				all = append(all, []byte(v))
			}
		}
		for _, b := range all {
			for _, nd := range s.needles {
				if bytes.Contains(b, nd) {
					s.leaks = append(s.leaks, fmt.Sprintf("%q on %s", nd, m.Subject))
				}
			}
		}
		if bytes.Contains(m.Data, []byte(trustName)) {
			s.plain[strings.SplitN(m.Subject, ".", 3)[1]] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	s.sub = sub
	return s
}

// check fails on any leak, on a message the sniffer's connection dropped
// (it would not have been looked at), and unless the sniffer saw traffic
// of the kinds that carry the data (a sniffer that sees nothing proves
// nothing).
func (s *trSniffer) check(t testing.TB, kinds ...string) {
	t.Helper()
	if d, err := s.sub.Dropped(); err != nil || d != 0 {
		t.Errorf("the sniffer dropped %d messages (%v)", d, err)
	}
	if err := s.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.leaks {
		t.Errorf("in the clear on the wire: %s", l)
	}
	for _, k := range kinds {
		if s.subjects[k] == 0 {
			t.Errorf("sniffer saw no message on %s subjects (saw %v)", k, s.subjects)
		}
	}
	t.Logf("sniffer looked at %d messages: %v", s.n, s.subjects)
}

func trMarker() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "MARKER-" + hex.EncodeToString(b)
}

// capture records the frames published on subject.
type trCapture struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	sub  *nats.Subscription
}

func trCaptureOn(t testing.TB, nc *nats.Conn, subj string) *trCapture {
	t.Helper()
	c := &trCapture{}
	sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.sub = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

// from waits for a frame sent by p that matches ok, and returns it.
func (c *trCapture) from(t testing.TB, p transport.PeerID, ok func(*nats.Msg) bool) *nats.Msg {
	t.Helper()
	var got *nats.Msg
	trWait(t, 10*time.Second, "a frame from "+p.Short(), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.msgs {
			if trSender(m.Data) == p && (ok == nil || ok(m)) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// trReplies watches the inbox the rogue's forged requests name: nothing
// may ever answer them.
type trReplies struct {
	nc    *nats.Conn
	inbox string
	n     atomic.Int64
}

func trRepliesOn(t testing.TB, nc *nats.Conn) *trReplies {
	t.Helper()
	r := &trReplies{nc: nc, inbox: nats.NewInbox()}
	sub, err := nc.Subscribe(r.inbox, func(*nats.Msg) { r.n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

// send publishes a forged request.
func (r *trReplies) send(t testing.TB, subj string, data []byte) {
	t.Helper()
	if err := r.nc.PublishRequest(subj, r.inbox, data); err != nil {
		t.Fatal(err)
	}
}

// check fails if anything answered.
func (r *trReplies) check(t testing.TB) {
	t.Helper()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := r.n.Load(); n != 0 {
		t.Errorf("%d forged requests were answered", n)
	}
}

// trZeros is a reader of n zero bytes.
func trZeros(n int) io.Reader { return io.LimitReader(trZeroReader{}, int64(n)) }

type trZeroReader struct{}

func (trZeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// leaderAnnouncement reads, in the open scope sc, the leader's next
// announcement: the cluster id and term a rogue needs to pose as a member.
func leaderAnnouncement(t testing.TB, sc *transport.Scope, ann string, leader transport.PeerID) trWireAnnouncement {
	t.Helper()
	var a trWireAnnouncement
	got := make(chan struct{})
	var once sync.Once
	sub, err := sc.Subscribe(ann, func(m *transport.Msg) {
		if m.From == leader && rsm.Unmarshal(m.Data, &a) == nil {
			once.Do(func() { close(got) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the rogue heard no announcement of the leader")
	}
	return a
}

// announceAs publishes payload on ann in sc every 100ms until the test
// ends or the returned stop is called.
func announceAs(t testing.TB, sc *transport.Scope, ann string, payload []byte) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			_ = sc.Publish(ann, transport.PeerID{}, payload)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	stop = sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

// joinAsNonVoter makes a rogue node of the open cluster c announce itself,
// honestly but for the cluster id and term it read from the leader's
// announcements, until every member has it in the configuration as a
// non-voter. It keeps announcing until the test ends.
func joinAsNonVoter(t *testing.T, c *trustCluster) (*transport.Network, *transport.Scope) {
	t.Helper()
	l := c.leader(t)
	rn := rogueNet(t, c.url)
	gid := discoverGroup(t, rn, trustName)
	sc := rn.Scope(gid, transport.Secret{})
	ann := trSubject(l.net.Name(), "ann", gid.String())
	real := leaderAnnouncement(t, sc, ann, l.id())
	announceAs(t, sc, ann, trCBOR(t, trWireAnnouncement{Pref: trPrefNormal, HasState: true, Leader: l.id(), Term: real.Term, Cluster: real.Cluster}))
	trWait(t, 10*time.Second, "the rogue taken in as a non-voter by every member", func() bool {
		return c.memberEverywhere(rn.ID(), false)
	})
	return rn, sc
}

// memberEverywhere reports whether every node has p in its configuration,
// as a voter or not.
func (c *trustCluster) memberEverywhere(p transport.PeerID, voter bool) bool {
	for _, n := range c.nodes {
		in := false
		for _, m := range n.w.Members() {
			in = in || (m.Peer == p && m.Voter == voter)
		}
		if !in {
			return false
		}
	}
	return true
}

// lyingRogue is a rogue node of an open cluster that announces itself as a
// member and acknowledges every AppendEntries and InstallSnapshot of the
// leader, keeping nothing: it claims, through its answers, to replicate.
type lyingRogue struct {
	net  *transport.Network
	sc   *transport.Scope
	rt   *transport.RaftTransport
	stop func() // silences it: no more announcements, no answers
}

func newLyingRogue(t *testing.T, c *trustCluster) *lyingRogue {
	t.Helper()
	l := c.leader(t)
	rn := rogueNet(t, c.url)
	gid := l.w.g.ID()
	sc := rn.Scope(gid, transport.Secret{})
	ann := trSubject(l.net.Name(), "ann", gid.String())
	real := leaderAnnouncement(t, sc, ann, l.id())
	rt, err := transport.NewRaftTransport(sc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case rpc := <-rt.Consumer():
				switch req := rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: req.PrevLogEntry + uint64(len(req.Entries)), Success: true}, nil)
				case *raft.InstallSnapshotRequest:
					_, _ = io.Copy(io.Discard, rpc.Reader)
					rpc.Respond(&raft.InstallSnapshotResponse{Term: req.Term, Success: true}, nil)
				default:
					rpc.Respond(nil, fmt.Errorf("rogue"))
				}
			case <-done:
				return
			}
		}
	}()
	quiet := announceAs(t, sc, ann, trCBOR(t, trWireAnnouncement{Pref: trPrefNormal, HasState: true, Leader: l.id(), Term: real.Term, Cluster: real.Cluster}))
	r := &lyingRogue{net: rn, sc: sc, rt: rt}
	r.stop = sync.OnceFunc(func() {
		quiet()
		_ = rt.Close()
		close(done)
		wg.Wait()
	})
	t.Cleanup(r.stop)
	return r
}

// trustChildEnv names the attack TestTrustCrashChild runs.
const trustChildEnv = "MOSAIK_TRUST_CHILD"

// brokenConfiguration is a Raft configuration that does not decode.
var brokenConfiguration = []byte{0xc1}

// TestTrustCrashChild is the child process of TestTrustOpenCrash: an open
// cluster, a rogue member, and Raft RPCs from it whose configuration does
// not decode (hashicorp/raft panics on those). It passes if every node
// lives on.
//
//   - non-voter: the rogue is taken in as a non-voter (see
//     joinAsNonVoter) and sends one follower an InstallSnapshot, another an
//     AppendEntries with a configuration entry;
//   - voter: the rogue lies its way to a vote (see lyingRogue), if it can,
//     and then sends a follower the InstallSnapshot.
func TestTrustCrashChild(t *testing.T) {
	attack := os.Getenv(trustChildEnv)
	if attack == "" {
		t.Skip("the child of TestTrustOpenCrash")
	}
	c := newTrustCluster(t, transport.Secret{}, nil)
	var (
		rt *transport.RaftTransport
		me transport.PeerID
	)
	switch attack {
	case "non-voter":
		rn, sc := joinAsNonVoter(t, c)
		rt, me = rogueRaft(t, sc, time.Second), rn.ID()
	case "voter":
		r := newLyingRogue(t, c)
		promoted := false
		deadline := time.Now().Add(10 * time.Second)
		for !promoted && time.Now().Before(deadline) {
			promoted = c.memberEverywhere(r.net.ID(), true)
			time.Sleep(20 * time.Millisecond)
		}
		if !promoted {
			t.Log("the lying rogue never became a voter: the attack ends there")
			return
		}
		t.Log("the lying rogue is a voter")
		rt, me = r.rt, r.net.ID()
	default:
		t.Fatalf("attack %q unknown", attack)
	}
	l := c.leader(t)
	st := l.w.g.Status()
	f := c.followers(l)
	id, ad := trAddr(f[0].id())
	err := rt.InstallSnapshot(id, ad, &raft.InstallSnapshotRequest{RPCHeader: trHeader(me), SnapshotVersion: raft.SnapshotVersionMax,
		Term: st.Term + 1, Leader: []byte(me.String()), LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1,
		Configuration: brokenConfiguration, Size: 64},
		new(raft.InstallSnapshotResponse), trZeros(64))
	t.Logf("InstallSnapshot: %v", err)
	if attack == "non-voter" {
		id, ad := trAddr(f[1].id())
		err := rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(me), Term: st.Term + 1,
			Leader: []byte(me.String()), PrevLogEntry: uint64(st.LogLast), PrevLogTerm: st.Term,
			Entries: []*raft.Log{{Index: uint64(st.LogLast) + 1, Term: st.Term + 1, Type: raft.LogConfiguration, Data: brokenConfiguration}}},
			new(raft.AppendEntriesResponse))
		t.Logf("AppendEntries: %v", err)
	}
	time.Sleep(time.Second) // give a panic its time: nothing else shows it
	for _, n := range c.nodes {
		if n.w.g.Status().Role == "stopped" {
			t.Errorf("node %s stopped", n.id().Short())
		}
	}
}
