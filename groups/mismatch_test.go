package groups

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/logtest"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// joinAs joins c's key with a counter of signature sig (default if empty),
// logging to log.
func (c *cluster) joinAs(t *testing.T, cfg *Config, sig string, log *logtest.Log) *node {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	cfg.Logger = log.Logger()
	n, err := transport.New(context.Background(), transport.WithURL(c.url))
	if err != nil {
		t.Fatal(err)
	}
	nd := &node{net: n, sm: &counter{sig: sig}}
	if nd.g, err = Join(n, c.key, nd.sm, cfg); err != nil {
		n.Close()
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, nd)
	return nd
}

// mismatchWarning is what a member logs on hearing another group under its
// key.
const mismatchWarning = "with other settings"

// waitWarned waits until log holds a warning about another group that
// names every part.
func waitWarned(t *testing.T, log *logtest.Log, who string, parts ...string) string {
	t.Helper()
	var got []string
	waitFor(t, 15*time.Second, who+" to warn of the other group", func() bool {
		got = log.Find(slog.LevelWarn, append([]string{mismatchWarning}, parts...)...)
		return len(got) > 0
	})
	return got[0]
}

// waitMismatch waits until nd's status lists the group other.
func waitMismatch(t *testing.T, nd *node, other ID) Mismatch {
	t.Helper()
	var found Mismatch
	waitFor(t, 15*time.Second, "the status to show the other group", func() bool {
		for _, m := range nd.g.Status().Mismatches {
			if m.ID == other {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// Two members that open one key with machines of different signatures
// form two groups; each warns of the other, naming what differs, and
// shows it in its status.
func TestMismatchedSignatureWarns(t *testing.T) {
	c := newCluster(t)
	la, lb := logtest.New(), logtest.New()
	a := c.joinAs(t, nil, "test.counter.v1", la)
	online(t, a) // a alone founds its group
	b := c.joinAs(t, nil, "test.counter.v2", lb)
	online(t, b) // so does b: nothing joins them
	if a.g.ID() == b.g.ID() {
		t.Fatal("different signatures, same id")
	}
	t.Log(waitWarned(t, la, "a", "test.counter.v1", "test.counter.v2", b.g.ID().Short()))
	t.Log(waitWarned(t, lb, "b", "test.counter.v1", "test.counter.v2", a.g.ID().Short()))
	m := waitMismatch(t, a, b.g.ID())
	if m.Peers != 1 || m.Voters != 1 || !strings.Contains(strings.Join(m.Differs, "; "), "test.counter.v2") {
		t.Fatalf("a's status: %+v", m)
	}
	waitMismatch(t, b, a.g.ID())
	// Warned once, not at every message.
	time.Sleep(3 * c.nodes[0].g.cfg.announceInterval())
	if n := len(la.Find(slog.LevelWarn, mismatchWarning)); n != 1 {
		t.Fatalf("a warned %d times:\n%s", n, la)
	}
}

// Members that differ only in timings form two groups too, and say which
// timings differ.
func TestMismatchedTimingsWarn(t *testing.T) {
	c := newCluster(t)
	la, lb := logtest.New(), logtest.New()
	a := c.joinAs(t, nil, "", la)
	cfg := testConfig()
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 25*time.Millisecond, 250*time.Millisecond
	b := c.joinAs(t, cfg, "", lb)
	online(t, a, b)
	t.Log(waitWarned(t, la, "a", "HeartbeatInterval", "20ms", "25ms", "ElectionTimeout"))
	waitWarned(t, lb, "b", "HeartbeatInterval", "ElectionTimeout")
	m := waitMismatch(t, b, a.g.ID())
	if strings.Contains(strings.Join(m.Differs, "; "), "signature") {
		t.Fatalf("differs names the signature, which is the same: %v", m.Differs)
	}
}

// notOnline waits for nd's Online to give up within d and returns why.
func notOnline(t *testing.T, nd *node, d time.Duration) *NotOnlineError {
	t.Helper()
	err := nd.g.When().Online(ctxT(t, d))
	if err == nil {
		t.Fatal("online, want not")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not match context.DeadlineExceeded", err)
	}
	var no *NotOnlineError
	if !errors.As(err, &no) {
		t.Fatalf("error %q (%T) does not say why", err, err)
	}
	t.Log(err)
	return no
}

// An observer with nobody else hears no voter and says so; with a member
// of another group under its key, it names that group.
func TestOnlineSaysWhy(t *testing.T) {
	c := newCluster(t)
	obs := c.joinAs(t, withPref(Observer), "", logtest.New())
	if no := notOnline(t, obs, time.Second); no.Reason != ReasonNoVoter || len(no.Mismatches) != 0 {
		t.Fatalf("alone: %+v", no)
	}
	other := c.joinAs(t, nil, "test.counter.v2", logtest.New())
	online(t, other)
	waitMismatch(t, obs, other.g.ID())
	no := notOnline(t, obs, time.Second)
	if no.Reason != ReasonMismatch || len(no.Mismatches) != 1 || no.Mismatches[0].ID != other.g.ID() ||
		!strings.Contains(no.Error(), "test.counter.v2") {
		t.Fatalf("with another group: %+v", no)
	}
	// A closed member still says it closed.
	obs.g.Close()
	if err := obs.g.When().Online(ctxT(t, time.Second)); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

// The record of other groups is bounded, and so are the warnings about
// them, whatever members of made-up groups send.
func TestMismatchBounds(t *testing.T) {
	var ms mismatches
	now := time.Now()
	differs := func() []string { return []string{"x"} }
	warned := 0
	for i := range 3 * maxMismatches {
		a := identity{ID: ID{byte(i), 1}}
		for j := range 2 * maxMismatchPeers {
			warn, _ := ms.heard(transport.PeerID{byte(i), byte(j)}, &a, differs, now.Add(time.Duration(i*1000+j)))
			if warn {
				warned++
			}
		}
	}
	list := ms.list()
	if len(list) != maxMismatches || warned != maxMismatches {
		t.Fatalf("%d groups recorded, %d warnings; want %d each", len(list), warned, maxMismatches)
	}
	for _, m := range list {
		if m.Peers != maxMismatchPeers || m.ID[0] < 2*maxMismatches {
			t.Fatalf("kept %+v: want the %d groups heard last, %d members each", m, maxMismatches, maxMismatchPeers)
		}
	}
	// The warnings come back once their window has passed.
	later := now.Add(mismatchLogEvery + time.Hour)
	if warn, _ := ms.heard(transport.PeerID{1}, &identity{ID: ID{200}}, differs, later); !warn {
		t.Fatal("no warning after the window")
	}
	ms.prune(later, time.Minute)
	if l := ms.list(); len(l) != 1 || l[0].ID != (ID{200}) {
		t.Fatalf("after pruning: %+v", l)
	}
}

// An identity over its size limit, or malformed, is dropped: nothing is
// recorded.
func TestIdentityHostile(t *testing.T) {
	c := newCluster(t)
	lg := logtest.New()
	a := c.joinAs(t, nil, "", lg)
	other := newIdentity(ID{9}, "test.counter.v2", &a.g.cfg)
	b, err := rsm.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	long := other
	long.Signature = strings.Repeat("s", maxIdentitySignature+10)
	lb, _ := rsm.Marshal(long)
	for _, data := range [][]byte{
		append(b, make([]byte, maxIdentitySize)...), // over the size limit
		b[:len(b)/2], // cut short
		lb,           // a signature over its bound
		{0xff},
	} {
		a.g.onIdentity(&transport.Msg{From: transport.PeerID{7}, Data: data})
	}
	if ms := a.g.Mismatches(); len(ms) != 0 {
		t.Fatalf("recorded %+v", ms)
	}
	// Dropped before decoding: the one over the size limit would fail to
	// decode (extra data) even without the check, so ask the log.
	if got := lg.Find(slog.LevelDebug, "identity over its size limit"); len(got) != 1 {
		t.Fatalf("oversized identity: %d size-limit drops logged, want 1", len(got))
	}
	a.g.onIdentity(&transport.Msg{From: transport.PeerID{7}, Data: b})
	if ms := a.g.Mismatches(); len(ms) != 1 || ms[0].ID != (ID{9}) {
		t.Fatalf("a valid identity: recorded %+v", ms)
	}
}

// A voter cut off from the other voters has no leader, and says how many
// of its configuration's voters it hears.
func TestOnlineSaysNoQuorum(t *testing.T) {
	c := newCluster(t)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	online(t, a, b, d)
	waitFor(t, 15*time.Second, "three voters", func() bool { v, _ := voters(a.g.Members()); return v == 3 })
	b.faults.Isolate()
	d.faults.Isolate()
	if err := a.g.When().Offline(ctxT(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	var no *NotOnlineError
	waitFor(t, 15*time.Second, "a to hear only itself", func() bool {
		err := a.g.When().Online(ctxT(t, 100*time.Millisecond))
		return errors.As(err, &no) && no.Voters == 0
	})
	if no.Reason != ReasonNoLeader || !strings.Contains(no.Detail, "1 of the 3 voters") {
		t.Fatalf("%+v", no)
	}
	t.Log(no)
}
