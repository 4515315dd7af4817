package collections

// An adversarial suite of the trust layer. A rogue knows the collection's
// name and the NATS URL, connects with nats.go and, as a more capable
// attacker, runs transport nodes of its own (with their own identities and
// no secret, or a wrong one). It attacks three nodes that each opened the
// map "secrets"; every attack must fail, and is asserted by what must not
// change: replica contents (checked after a real write has reached every
// replica), Raft terms, the leader, the members, and the frames the nodes
// counted as rejected (which proves the forged frames arrived).
//
// TestTrustSealed runs attacks 1 to 8 on a sealed collection (the numbers
// are the brief's), TestTrustOpen the fake-voter attack (9) and the others
// that apply on an open one. TestTrustOpenNonVoter, TestTrustOpenCrash and
// TestTrustOpenLyingVoters go further on an open collection: what a rogue
// can do once the leader has taken it in. The helpers are in
// trust_helpers_test.go; the inspect tool's side (10) is in
// cmd/inspect/cli/trust_test.go.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

func TestTrustSealed(t *testing.T) {
	secret := transport.NewSecret()
	secretBytes, _ := hex.DecodeString(secret.Hex())
	mark := trMarker()
	var (
		raw *nats.Conn
		sn  *trSniffer
	)
	c := newTrustCluster(t, secret, func(url, network string) {
		// Attack 6 listens to every subject from before the first member
		// opens the collection to the end of the test.
		raw = rogueConn(t, url)
		sn = trSniff(t, raw, network, []byte(mark), []byte(secret.Hex()), secretBytes)
	})
	// The marker goes from a follower to the leader and on to the other
	// follower: over every kind of link.
	l := c.leader(t)
	c.write(t, c.followers(l)[0], "marker", mark)

	rogueOpen := rogueNet(t, c.url) // no secret: its scopes are open
	rogueWrong := rogueNet(t, c.url, transport.WithSecret(transport.NewSecret()))
	gid := discoverGroup(t, rogueOpen, trustName)
	if gid != l.w.g.ID() {
		t.Fatalf("discovered group %s, the collection's is %s", gid.Short(), l.w.g.ID().Short())
	}
	network := l.net.Name()
	scopes := []struct {
		name string
		sc   *transport.Scope
	}{
		{"open scope", rogueOpen.Scope(gid, transport.Secret{})},
		{"wrong secret", rogueWrong.Scope(gid, transport.Secret{})},
	}
	if scopes[0].sc.Sealed() || !scopes[1].sc.Sealed() {
		t.Fatal("rogue scopes: the first must be open, the second sealed")
	}
	ctlOf := func(n *trustNode) string { return trSubject(network, "ctl", gid.String(), n.id().String()) }
	raftOf := func(kind string, n *trustNode) string { return trSubject(network, kind, gid.String(), n.id().String()) }

	// 1. A forged forward on the leader's control subject writes nothing.
	t.Run("forged forward", func(t *testing.T) {
		l := c.leader(t)
		f := c.followers(l)
		before := c.view(t)
		rej := trRejected(l)
		ctl := ctlOf(l)
		rp := trRepliesOn(t, raw)
		// Plain, as the follower would send it outside the scope.
		rp.send(t, ctl, trPlainFrame(f[0].id(), 0, 1, forwardMsg(t, "forged-plain", "x")))
		// Claiming to be sealed by the follower: random bytes.
		rp.send(t, ctl, trJunkSealed(f[0].id(), 2, 300))
		sent := uint64(2)
		// Sealed by the rogue's own nodes, as themselves.
		for _, s := range scopes {
			b, err := s.sc.Request(ctxT(t, 500*time.Millisecond), ctl, l.id(), forwardMsg(t, "forged-"+s.name, "x"))
			if err == nil {
				t.Errorf("%s: forged forward answered: %x", s.name, b)
			}
			sent++
		}
		trWaitRejected(t, "forged forwards", rej+sent, l)
		rp.check(t)
		c.checkContents(t, "after forged forwards")
		c.checkUnchanged(t, "after forged forwards", before)
	})

	// 7. A captured forward, sent again verbatim, applies at most once and
	// is counted as rejected; so is a captured Raft heartbeat.
	t.Run("replay", func(t *testing.T) {
		l := c.leader(t)
		f := c.followers(l)
		before := c.view(t)
		ctl := trCaptureOn(t, raw, ctlOf(l))
		v1 := c.write(t, f[0], "replayed", "once")
		m := ctl.from(t, f[0].id(), func(m *nats.Msg) bool { return m.Reply != "" })
		rej := trRejected(l)
		for range 3 {
			if err := raw.PublishRequest(m.Subject, m.Reply, m.Data); err != nil {
				t.Fatal(err)
			}
		}
		trWaitRejected(t, "replayed forward", rej+3, l)
		// Had the replay applied, it would have taken a version.
		if v2 := c.write(t, l, "after-replay", "x"); v2 != v1+1 {
			t.Errorf("the write after the replay got version %d, want %d", v2, v1+1)
		}

		hb := trCaptureOn(t, raw, raftOf("hb", f[1]))
		h := hb.from(t, l.id(), nil)
		rej = trRejected(f[1])
		for range 3 {
			if err := raw.PublishRequest(h.Subject, h.Reply, h.Data); err != nil {
				t.Fatal(err)
			}
		}
		trWaitRejected(t, "replayed heartbeat", rej+3, f[1])
		c.checkContents(t, "after replays")
		c.checkUnchanged(t, "after replays", before)
	})

	// 3. A forced leave in a live follower's name changes no membership.
	t.Run("forced leave", func(t *testing.T) {
		l := c.leader(t)
		victim := c.followers(l)[0]
		before := c.view(t)
		ctl := ctlOf(l)
		cp := trCaptureOn(t, raw, ctl)
		rej := trRejected(l)
		rp := trRepliesOn(t, raw)
		rp.send(t, ctl, trPlainFrame(victim.id(), 0, 1, leaveMsg(t)))
		rp.send(t, ctl, trJunkSealed(victim.id(), 2, 100))
		sent := uint64(2)
		for _, s := range scopes {
			// As itself: it does not open.
			if _, err := s.sc.Request(ctxT(t, 300*time.Millisecond), ctl, l.id(), leaveMsg(t)); err == nil {
				t.Errorf("%s: leave answered", s.name)
			}
			// Then the same frame, claiming the victim sent it, with the
			// rogue's card and without.
			m := cp.from(t, s.sc.Network().ID(), nil)
			for _, drop := range []bool{false, true} {
				if err := raw.PublishRequest(ctl, m.Reply, trImpersonate(m.Data, victim.id(), drop)); err != nil {
					t.Fatal(err)
				}
			}
			sent += 3
		}
		trWaitRejected(t, "forged leaves", rej+sent, l)
		rp.check(t)
		trHold(t, time.Second, "after forged leaves", func() error { return c.votersErr(true) })
		c.checkUnchanged(t, "after forged leaves", before)
		c.checkContents(t, "after forged leaves")
	})

	// 2. TimeoutNow, RequestVote, pre-votes, heartbeats and appends at a
	// higher term, to the leader and the followers: no term changes.
	t.Run("raft disruption", func(t *testing.T) {
		l := c.leader(t)
		before := c.view(t)
		st := l.w.g.Status()
		rej := trRejected(c.nodes...)
		rp := trRepliesOn(t, raw)
		var sent atomic.Uint64
		var wg sync.WaitGroup
		for _, s := range scopes {
			rt := rogueRaft(t, s.sc, 200*time.Millisecond)
			rogue := s.sc.Network().ID()
			for _, target := range c.nodes {
				id, ad := trAddr(target.id())
				entries := []*raft.Log{forgedEntry(t, uint64(st.LogLast)+1, st.Term+1, "forged-raft", s.name)}
				rpcs := map[string]func() error{
					"TimeoutNow": func() error {
						return rt.TimeoutNow(id, ad, &raft.TimeoutNowRequest{RPCHeader: trHeader(l.id())}, new(raft.TimeoutNowResponse))
					},
					"RequestVote": func() error {
						return rt.RequestVote(id, ad, &raft.RequestVoteRequest{RPCHeader: trHeader(rogue), Term: st.Term + 1,
							LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, LeadershipTransfer: true}, new(raft.RequestVoteResponse))
					},
					"RequestVote as leader": func() error {
						return rt.RequestVote(id, ad, &raft.RequestVoteRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
							LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, LeadershipTransfer: true}, new(raft.RequestVoteResponse))
					},
					"RequestPreVote": func() error {
						return rt.RequestPreVote(id, ad, &raft.RequestPreVoteRequest{RPCHeader: trHeader(rogue), Term: st.Term + 1,
							LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1}, new(raft.RequestPreVoteResponse))
					},
					"heartbeat": func() error {
						return rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(rogue), Term: st.Term + 1,
							Leader: []byte(rogue.String())}, new(raft.AppendEntriesResponse))
					},
					"AppendEntries": func() error {
						return rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
							PrevLogEntry: uint64(st.LogLast), PrevLogTerm: st.Term, LeaderCommitIndex: uint64(st.LogLast) + 1,
							Entries: entries}, new(raft.AppendEntriesResponse))
					},
				}
				for name, rpc := range rpcs {
					sent.Add(1)
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := rpc(); err == nil {
							t.Errorf("%s: %s to %s answered", s.name, name, target.id().Short())
						}
					}()
				}
			}
		}
		// And plain, claiming to come from the leader.
		for _, target := range c.nodes {
			for subj, body := range map[string][]byte{
				raftOf("raft", target): raftMsg(t, trKindTimeoutNow, raft.TimeoutNowRequest{RPCHeader: trHeader(l.id())}),
				raftOf("hb", target): raftMsg(t, trKindAppend, raft.AppendEntriesRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
					Leader: []byte(l.id().String())}),
			} {
				rp.send(t, subj, trPlainFrame(l.id(), 0, 7, body))
				sent.Add(1)
			}
			rp.send(t, raftOf("raft", target), trJunkSealed(l.id(), 8, 200))
			sent.Add(1)
		}
		wg.Wait()
		trWaitRejected(t, "forged raft rpcs", rej+sent.Load(), c.nodes...)
		rp.check(t)
		trHold(t, time.Second, "after forged raft rpcs", func() error { return c.stableErr(before) })
		c.checkUnchanged(t, "after forged raft rpcs", before)
		c.checkContents(t, "after forged raft rpcs")
	})

	// 5. A forged InstallSnapshot to a follower changes nothing there.
	t.Run("forged snapshot", func(t *testing.T) {
		l := c.leader(t)
		target := c.followers(l)[0]
		before := c.view(t)
		st := target.w.g.Status()
		rej := trRejected(target)
		rp := trRepliesOn(t, raw)
		id, ad := trAddr(target.id())
		done := make(chan string, len(scopes))
		var rts []*transport.RaftTransport
		for _, s := range scopes {
			rt := rogueRaft(t, s.sc, 100*time.Millisecond)
			rts = append(rts, rt)
			rogue := s.sc.Network().ID()
			rid, raddr := trAddr(rogue)
			req := &raft.InstallSnapshotRequest{
				RPCHeader: trHeader(l.id()), SnapshotVersion: raft.SnapshotVersionMax,
				Term: st.Term + 1, Leader: []byte(l.id().String()),
				LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1,
				Configuration:      raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rid, Address: raddr}}}),
				ConfigurationIndex: uint64(st.LogLast) + 1000,
				Size:               4096,
			}
			go func() {
				err := rt.InstallSnapshot(id, ad, req, new(raft.InstallSnapshotResponse), trZeros(4096))
				if err == nil {
					done <- s.name + ": forged snapshot answered"
					return
				}
				done <- ""
			}()
		}
		begin := raftMsg(t, trKindSnapBegin, struct {
			_       struct{} `cbor:",toarray"`
			ID      uint64
			Request *raft.InstallSnapshotRequest
		}{ID: 1, Request: &raft.InstallSnapshotRequest{RPCHeader: trHeader(l.id()), SnapshotVersion: raft.SnapshotVersionMax, Term: st.Term + 1,
			LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, Size: 16}})
		chunk := append([]byte{trKindSnapChunk, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 16)...)
		rp.send(t, raftOf("raft", target), trPlainFrame(l.id(), 0, 1, begin))
		rp.send(t, raftOf("snap", target), trPlainFrame(l.id(), 0, 2, chunk))
		rp.send(t, raftOf("snap", target), trJunkSealed(l.id(), 3, 100))
		trWaitRejected(t, "forged snapshots", rej+uint64(3+len(scopes)), target)
		rp.check(t)
		trHold(t, time.Second, "after forged snapshots", func() error {
			now := target.w.g.Status()
			if now.Term != st.Term || now.LogSnapshot != st.LogSnapshot || now.LogLast < st.LogLast || now.LogLast > st.LogLast+10 {
				return fmt.Errorf("follower went from term %d, last index %d, snapshot %d to term %d, last index %d, snapshot %d",
					st.Term, uint64(st.LogLast), st.LogSnapshot, now.Term, now.LogLast, now.LogSnapshot)
			}
			return c.stableErr(before)
		})
		// Nothing answers the rogue: its transfers wait until it gives up.
		for _, rt := range rts {
			_ = rt.Close()
		}
		for range scopes {
			if msg := <-done; msg != "" {
				t.Error(msg)
			}
		}
		c.checkContents(t, "after forged snapshots")
		c.checkUnchanged(t, "after forged snapshots", before)
	})

	// 8 starts here: a fourth node opens the collection with another
	// secret, and stays through attack 4.
	log4 := &trustLog{}
	n4 := rogueNet(t, c.url)
	opened4 := time.Now()
	w4 := cleanup(t, must[*MapWriter[string, string]](t)(NewMapWriter[string, string](n4, trustName,
		WithSecret(transport.NewSecret()), WithGroupConfig(trustConfig(log4.logger())))))
	if w4.g.ID() != gid {
		t.Fatalf("the fourth node's group is %s, want %s: it would not even meet the others", w4.g.ID().Short(), gid.Short())
	}

	// 4. Fake announcements claiming a huge last index, or that a live
	// follower leaves, for longer than the dead-member timeout: nobody is
	// added, removed or promoted, and the leader stays.
	t.Run("fake announcements", func(t *testing.T) {
		l := c.leader(t)
		victim := c.followers(l)[0]
		before := c.view(t)
		rej := trRejected(c.nodes...)
		ann := trSubject(network, "ann", gid.String())
		term := before.terms[0]
		fake := trWireAnnouncement{Pref: trPrefNormal, Leader: l.id(), Term: term, LastIndex: 1 << 40, Applied: 1 << 40}
		leaving := fake
		leaving.Leaving = true
		fakeMsg, leavingMsg := trCBOR(t, fake), trCBOR(t, leaving)
		forged := newTrForger(t)
		cp := trCaptureOn(t, raw, ann)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		stopAttack := sync.OnceFunc(func() { close(stop); wg.Wait() })
		defer stopAttack()
		attack := func(f func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					f()
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
		}
		stranger := transport.NewPeerID()
		attack(func() {
			_ = raw.Publish(ann, trPlainFrame(stranger, 0, 0, fakeMsg))
			_ = raw.Publish(ann, trPlainFrame(victim.id(), 0, 0, leavingMsg))
			_ = raw.Publish(ann, trJunkSealed(victim.id(), 0, 200))
			// Sealed with the key of the open scope, signed by a key of the
			// rogue's: as itself, and claiming to be the victim.
			_ = raw.Publish(ann, forged.broadcast(gid, nil, ann, forged.id, true, fakeMsg))
			_ = raw.Publish(ann, forged.broadcast(gid, nil, ann, victim.id(), false, leavingMsg))
		})
		for _, s := range scopes {
			attack(func() { _ = s.sc.Publish(ann, transport.PeerID{}, fakeMsg) })
		}
		// The rogue nodes' own broadcasts, claiming to be the victim.
		attack(func() {
			cp.mu.Lock()
			var ms []*nats.Msg
			for _, m := range cp.msgs {
				if s := trSender(m.Data); s == rogueOpen.ID() || s == rogueWrong.ID() {
					ms = append(ms, m)
				}
			}
			cp.msgs = nil
			cp.mu.Unlock()
			for _, m := range ms {
				_ = raw.Publish(ann, trImpersonate(m.Data, victim.id(), false))
				_ = raw.Publish(ann, trImpersonate(m.Data, victim.id(), true))
			}
		})
		dmt := trustConfig(nil).DeadMemberTimeout
		trHold(t, dmt+time.Second, "under fake announcements", func() error {
			if err := c.votersErr(true); err != nil {
				return err
			}
			return c.stableErr(before)
		})
		stopAttack()
		if got := trRejected(c.nodes...) - rej; got < 3*10 {
			t.Errorf("the nodes rejected only %d frames under the attack", got)
		}
		c.checkUnchanged(t, "after fake announcements", before)
		c.checkContents(t, "after fake announcements")
		// Every member said, once, that it hears what it cannot open.
		for _, n := range c.nodes {
			trWait(t, 5*time.Second, "the foreign-message warning", func() bool {
				return strings.Contains(n.log.String(), trForeignWarning)
			})
			if k := strings.Count(n.log.String(), trForeignWarning); k != 1 {
				t.Errorf("node %s logged the foreign-message warning %d times, want once", n.id().Short(), k)
			}
		}
	})

	// 8. The member with the wrong secret never comes online, founds
	// nothing, is never added, and says why exactly once.
	t.Run("wrong secret member", func(t *testing.T) {
		before := c.view(t)
		ctx, cancel := context.WithDeadline(context.Background(), opened4.Add(5*time.Second))
		defer cancel()
		if err := w4.When().Online(ctx); err == nil {
			t.Fatal("the member with the wrong secret came online")
		}
		st := w4.g.Status()
		if st.Online || !st.Leader.IsZero() || uint64(st.LogLast) != 0 || st.Term != 0 || len(st.Members) != 0 {
			t.Errorf("the member with the wrong secret: %+v", st)
		}
		if w4.Len() != 0 || w4.Version() != 0 {
			t.Errorf("the member with the wrong secret holds %d entries at version %d", w4.Len(), w4.Version())
		}
		c.checkUnchanged(t, "with a member with the wrong secret", before)
		c.checkContents(t, "with a member with the wrong secret")
		if w4.Len() != 0 {
			t.Errorf("the member with the wrong secret got %d entries", w4.Len())
		}
		if k := strings.Count(log4.String(), trForeignWarning); k != 1 {
			t.Errorf("the member with the wrong secret logged the warning %d times, want once; log:\n%s", k, log4.String())
		}
		if err := closeOf(t, w4); err != nil {
			t.Error(err)
		}
	})

	// 6, actively: the inspect protocol answers nobody without the secret,
	// plain or sealed in another scope.
	t.Run("inspect without the secret", func(t *testing.T) {
		rej := trRejected(c.nodes...)
		rp := trRepliesOn(t, raw)
		dump := trCBOR(t, inspectwire.Request{Op: inspectwire.OpDump})
		sent := uint64(0)
		for _, n := range c.nodes {
			subj := inspectwire.Subject(n.net, gid.String(), n.id())
			rp.send(t, subj, trPlainFrame(rogueOpen.ID(), 0, 1, dump))
			sent++
			for _, s := range scopes {
				if b, err := s.sc.Request(ctxT(t, 300*time.Millisecond), subj, n.id(), dump); err == nil {
					t.Errorf("%s: node %s answered a dump: %x", s.name, n.id().Short(), b)
				}
				sent++
			}
		}
		trWaitRejected(t, "inspect requests", rej+sent, c.nodes...)
		rp.check(t)
	})

	// 6. Nothing of the contents, nor the secret, ever crossed the server
	// in the clear.
	t.Run("no plaintext", func(t *testing.T) {
		sn.check(t, "ctl", "raft", "hb", "ann", "card")
		sn.mu.Lock()
		defer sn.mu.Unlock()
		// The sniffer can see plain text: status answers name the
		// collection, and they are public.
		if len(sn.plain) == 0 {
			t.Error("the sniffer never saw the collection's name, not even in status answers")
		}
	})
}

// 9. An open group: anyone may join it, but announcing a huge last index
// makes nobody a voter: only what the leader saw a member replicate counts.
// The same forged frames as for the sealed group are tried where they now
// open, and controls show that the hand-made encodings are understood.
func TestTrustOpen(t *testing.T) {
	mark := trMarker()
	var (
		raw *nats.Conn
		sn  *trSniffer
	)
	c := newTrustCluster(t, transport.Secret{}, func(url, network string) {
		raw = rogueConn(t, url)
		sn = trSniff(t, raw, network, []byte(mark))
	})
	l := c.leader(t)
	c.write(t, c.followers(l)[0], "marker", mark)
	rogue := rogueNet(t, c.url)
	gid := discoverGroup(t, rogue, trustName)
	sc := rogue.Scope(gid, transport.Secret{})
	network := l.net.Name()
	ctlOf := func(n *trustNode) string { return trSubject(network, "ctl", gid.String(), n.id().String()) }
	ann := trSubject(network, "ann", gid.String())

	// Control: the hand-made forward is understood. In an open group a
	// forward from anyone is applied, as a writer's would be.
	t.Run("control: open forward", func(t *testing.T) {
		l := c.leader(t)
		b, err := sc.Request(tctx(t), ctlOf(l), l.id(), forwardMsg(t, "open-write", "anyone"))
		if err != nil {
			t.Fatal(err)
		}
		var r trWireForwardReply
		if err := rsm.Unmarshal(b, &r); err != nil || r.Code != 0 || r.Seq != 1 {
			t.Fatalf("reply %+v, %v", r, err)
		}
		c.want["open-write"] = "anyone"
		c.checkContents(t, "after an open forward")
	})

	// 2, for a node outside the configuration: every RPC is refused before
	// Raft sees it, and says so.
	t.Run("raft from a non-member", func(t *testing.T) {
		l := c.leader(t)
		before := c.view(t)
		st := l.w.g.Status()
		rt := rogueRaft(t, sc, time.Second)
		me := rogue.ID()
		notMember := func(what string, err error) {
			t.Helper()
			var re *transport.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Msg, "not a member") {
				t.Errorf("%s: got %v, want a refusal", what, err)
			}
		}
		for _, target := range c.nodes {
			id, ad := trAddr(target.id())
			what := func(s string) string { return s + " to " + target.id().Short() }
			notMember(what("TimeoutNow"), rt.TimeoutNow(id, ad, &raft.TimeoutNowRequest{RPCHeader: trHeader(l.id())}, new(raft.TimeoutNowResponse)))
			notMember(what("RequestVote"), rt.RequestVote(id, ad, &raft.RequestVoteRequest{RPCHeader: trHeader(me), Term: st.Term + 1,
				LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, LeadershipTransfer: true}, new(raft.RequestVoteResponse)))
			notMember(what("heartbeat"), rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
				Leader: []byte(l.id().String())}, new(raft.AppendEntriesResponse)))
			notMember(what("AppendEntries"), rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
				PrevLogEntry: uint64(st.LogLast), PrevLogTerm: st.Term, LeaderCommitIndex: uint64(st.LogLast) + 1,
				Entries: []*raft.Log{forgedEntry(t, uint64(st.LogLast)+1, st.Term+1, "forged-raft", "open")}}, new(raft.AppendEntriesResponse)))
			if target != l {
				notMember(what("InstallSnapshot"), rt.InstallSnapshot(id, ad, &raft.InstallSnapshotRequest{RPCHeader: trHeader(l.id()),
					SnapshotVersion: raft.SnapshotVersionMax, Term: st.Term + 1, LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, Size: 64},
					new(raft.InstallSnapshotResponse), trZeros(64)))
			}
		}
		trHold(t, time.Second, "after raft rpcs from a non-member", func() error { return c.stableErr(before) })
		c.checkUnchanged(t, "after raft rpcs from a non-member", before)
		c.checkContents(t, "after raft rpcs from a non-member")
	})

	// 3: the rogue may ask to leave itself (it is no member: nothing
	// changes), but not in a member's name.
	t.Run("forced leave", func(t *testing.T) {
		l := c.leader(t)
		victim := c.followers(l)[0]
		before := c.view(t)
		cp := trCaptureOn(t, raw, ctlOf(l))
		b, err := sc.Request(tctx(t), ctlOf(l), l.id(), leaveMsg(t))
		if err != nil {
			t.Fatalf("control: the rogue's own leave was not answered: %v", err)
		}
		var r trWireReadIndexReply
		if err := rsm.Unmarshal(b, &r); err != nil {
			t.Fatalf("control: leave reply: %v", err)
		}
		m := cp.from(t, rogue.ID(), nil)
		rej := trRejected(l)
		for _, drop := range []bool{false, true} {
			if err := raw.PublishRequest(m.Subject, m.Reply, trImpersonate(m.Data, victim.id(), drop)); err != nil {
				t.Fatal(err)
			}
		}
		rp := trRepliesOn(t, raw)
		rp.send(t, ctlOf(l), trPlainFrame(victim.id(), 0, 1, leaveMsg(t)))
		trWaitRejected(t, "forged leaves", rej+3, l)
		rp.check(t)
		trHold(t, time.Second, "after forged leaves", func() error { return c.votersErr(true) })
		c.checkUnchanged(t, "after forged leaves", before)
	})

	// 9 proper: rogue nodes announce themselves as caught-up members of the
	// cluster (its id and term read from real announcements), with a huge
	// last index, and a forger claims a live follower leaves. The rogues are
	// taken in as non-voters (anyone may join an open group), but none
	// becomes a voter, the follower stays, and once they fall silent they
	// are removed.
	t.Run("fake voters", func(t *testing.T) {
		l := c.leader(t)
		victim := c.followers(l)[0]
		before := c.view(t)
		var real trWireAnnouncement
		got := make(chan struct{})
		var once sync.Once
		sub, err := sc.Subscribe(ann, func(m *transport.Msg) {
			if m.From == l.id() && rsm.Unmarshal(m.Data, &real) == nil {
				once.Do(func() { close(got) })
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the rogue heard no announcement of the leader")
		}
		sub.Close()
		if real.Cluster == (replica.ClusterID{}) || real.Term != before.terms[0] {
			t.Fatalf("the leader announces %+v", real)
		}
		fake := trWireAnnouncement{Pref: trPrefNormal, HasState: true, Leader: l.id(), Term: real.Term,
			LastIndex: 1 << 40, Applied: 1 << 40, Cluster: real.Cluster}
		fakeMsg := trCBOR(t, fake)
		leaving := real
		leaving.Leaving = true
		leavingMsg := trCBOR(t, leaving)

		var rogues []transport.PeerID
		stop := make(chan struct{})
		var wg sync.WaitGroup
		stopAttack := sync.OnceFunc(func() { close(stop); wg.Wait() })
		defer stopAttack()
		attack := func(f func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					f()
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
		}
		for range 3 {
			rn := rogueNet(t, c.url)
			rogues = append(rogues, rn.ID())
			rsc := rn.Scope(gid, transport.Secret{})
			attack(func() { _ = rsc.Publish(ann, transport.PeerID{}, fakeMsg) })
		}
		forged := newTrForger(t)
		rogues = append(rogues, forged.id)
		attack(func() {
			// A fake member with no node at all: hand-sealed announcements.
			_ = raw.Publish(ann, forged.broadcast(gid, nil, ann, forged.id, true, fakeMsg))
			// The victim's own announcement, saying it leaves, signed by the
			// forger: with the forger's card, and relying on the victim's.
			_ = raw.Publish(ann, forged.broadcast(gid, nil, ann, victim.id(), true, leavingMsg))
			_ = raw.Publish(ann, forged.broadcast(gid, nil, ann, victim.id(), false, leavingMsg))
		})
		inConfig := func(p transport.PeerID) bool {
			for _, m := range l.w.Members() {
				if m.Peer == p {
					return true
				}
			}
			return false
		}
		// Control: the forger's hand-sealed announcements open, or it would
		// not be taken in.
		trWait(t, 10*time.Second, "the rogues taken in as non-voters", func() bool {
			if err := c.votersErr(false); err != nil {
				t.Fatalf("under fake voters: %v", err)
			}
			for _, p := range rogues {
				if !inConfig(p) {
					return false
				}
			}
			return true
		})
		dmt := trustConfig(nil).DeadMemberTimeout
		trHold(t, dmt+time.Second, "under fake voters", func() error {
			if err := c.votersErr(false); err != nil {
				return err
			}
			return c.stableErr(before)
		})
		stopAttack()
		trWait(t, 3*dmt+5*time.Second, "the fake members removed", func() bool { return c.votersErr(true) == nil })
		c.checkUnchanged(t, "after fake voters", before)
		if err := l.w.When().Online(tctx(t)); err != nil {
			t.Fatal(err)
		}
		c.checkContents(t, "after fake voters")
	})

	// 6, for an open group: what two nodes say to each other is sealed all
	// the same.
	t.Run("no plaintext", func(t *testing.T) {
		sn.check(t, "ctl", "raft", "hb", "ann")
	})
}

// In an open group anyone who announces itself is taken in as a non-voter
// (see TestTrustOpen, fake voters). A non-voter never sends Raft RPCs of
// its own: only candidates ask for votes, only leaders append, install
// snapshots or hand leadership over. So a rogue taken in that way must not
// be able to force elections, nor append to a follower's log, whatever
// sender its RPC headers claim.
func TestTrustOpenNonVoter(t *testing.T) {
	c := newTrustCluster(t, transport.Secret{}, nil)
	rn, sc := joinAsNonVoter(t, c)
	rt := rogueRaft(t, sc, time.Second)
	// Each attack, then a second for its effect, then a real write that
	// every replica must apply, and hold only what was written for real.
	for _, attack := range []struct {
		name string
		run  func(l *trustNode, f []*trustNode, st groups.Status) error
	}{
		{"TimeoutNow to a follower", func(l *trustNode, f []*trustNode, st groups.Status) error {
			id, ad := trAddr(f[0].id())
			return rt.TimeoutNow(id, ad, &raft.TimeoutNowRequest{RPCHeader: trHeader(rn.ID())}, new(raft.TimeoutNowResponse))
		}},
		{"RequestVote to the leader", func(l *trustNode, f []*trustNode, st groups.Status) error {
			id, ad := trAddr(l.id())
			return rt.RequestVote(id, ad, &raft.RequestVoteRequest{RPCHeader: trHeader(rn.ID()), Term: st.Term + 1,
				LastLogIndex: uint64(st.LogLast) + 1000, LastLogTerm: st.Term + 1, LeadershipTransfer: true}, new(raft.RequestVoteResponse))
		}},
		{"AppendEntries as itself", func(l *trustNode, f []*trustNode, st groups.Status) error {
			id, ad := trAddr(f[0].id())
			return rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(rn.ID()), Term: st.Term + 1,
				Leader: []byte(rn.ID().String()), PrevLogEntry: uint64(st.LogLast), PrevLogTerm: st.Term, LeaderCommitIndex: uint64(st.LogLast) + 1,
				Entries: []*raft.Log{forgedEntry(t, uint64(st.LogLast)+1, st.Term+1, "forged-as-itself", "x")}}, new(raft.AppendEntriesResponse))
		}},
		{"AppendEntries as the leader", func(l *trustNode, f []*trustNode, st groups.Status) error {
			id, ad := trAddr(f[0].id())
			return rt.AppendEntries(id, ad, &raft.AppendEntriesRequest{RPCHeader: trHeader(l.id()), Term: st.Term + 1,
				Leader: []byte(l.id().String()), PrevLogEntry: uint64(st.LogLast), PrevLogTerm: st.Term, LeaderCommitIndex: uint64(st.LogLast) + 1,
				Entries: []*raft.Log{forgedEntry(t, uint64(st.LogLast)+1, st.Term+1, "forged-as-leader", "x")}}, new(raft.AppendEntriesResponse))
		}},
	} {
		t.Run(attack.name, func(t *testing.T) {
			l := c.leader(t)
			before := c.view(t)
			err := attack.run(l, c.followers(l), l.w.g.Status())
			var re *transport.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Msg, "not a member") {
				t.Errorf("the non-voter's RPC got %v, want a refusal", err)
			}
			trHold(t, time.Second, "after the non-voter's "+attack.name, func() error { return c.stableErr(before) })
			c.checkContents(t, "after the non-voter's "+attack.name)
		})
	}
}

// A member of an open group sends a follower a Raft RPC whose
// configuration does not decode: hashicorp/raft panics on that
// (DecodeConfiguration), so the attacks run in a child process
// (TestTrustCrashChild), and every node must survive them.
func TestTrustOpenCrash(t *testing.T) {
	for _, attack := range []string{"non-voter", "voter"} {
		t.Run(attack, func(t *testing.T) {
			t.Parallel() // each in a process of its own
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTrustCrashChild$", "-test.count=1", "-test.v", "-test.timeout=80s")
			cmd.Env = append(os.Environ(), trustChildEnv+"="+attack)
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestTrustCrashChild")) {
				if k := bytes.Index(out, []byte("panic:")); k >= 0 {
					out = out[max(0, k-600):min(len(out), k+1500)]
				}
				t.Errorf("a node did not survive a rogue %s's Raft RPCs with a broken configuration (%v):\n%s", attack, err, out)
			}
		})
	}
}

// An open group's newcomer becomes a voter "only once it has replicated the
// log to the leader's own knowledge, never by claiming it has" (README):
// rogues that acknowledge every AppendEntries without keeping anything
// must not become voters, and once they fall silent the group must go on.
func TestTrustOpenLyingVoters(t *testing.T) {
	c := newTrustCluster(t, transport.Secret{}, nil)
	var rogues []*lyingRogue
	for range 3 {
		rogues = append(rogues, newLyingRogue(t, c))
	}
	trWait(t, 10*time.Second, "the rogues taken in", func() bool {
		for _, r := range rogues {
			if !c.memberEverywhere(r.net.ID(), false) && !c.memberEverywhere(r.net.ID(), true) {
				return false
			}
		}
		return true
	})
	// Give them time to be promoted, if they can be: one change per
	// membership round.
	var lied error
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := c.votersErr(false); err != nil {
			lied = err
		}
	}
	if lied != nil {
		t.Errorf("under lying rogues: %v", lied)
	}
	for _, r := range rogues {
		r.stop()
	}
	dmt := trustConfig(nil).DeadMemberTimeout
	deadline := time.Now().Add(3*dmt + 5*time.Second)
	for {
		verr := c.votersErr(true)
		var werr error
		if verr == nil {
			if _, werr = c.nodes[0].w.Insert(ctxT(t, time.Second), "after-rogues", "x"); werr == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			st := c.nodes[0].w.g.Status()
			t.Fatalf("%v after the rogues fell silent: voters %s (%v), write: %v; node %s is %s, online %v",
				3*dmt+5*time.Second, trShort(trustVoters(c.nodes[0].w)), verr, werr, st.Self.Short(), st.Role, st.Online)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
