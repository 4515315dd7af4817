package transport

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/mosaik-go/mosaik/internal/natstest"
	"github.com/nats-io/nats.go"
)

// crashPair is node a on server 0 and node b on server 1 of a cluster of
// two, each failing over to the other server; a's dialer can slow its
// reconnect.
func crashPair(t *testing.T) (cl *natstest.Cluster, a, b *Network, da *natstest.Dialer) {
	t.Helper()
	cl, err := natstest.Start(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Shutdown) // after the nodes close (cleanups run last first)
	da, db := &natstest.Dialer{}, &natstest.Dialer{}
	a = newNet(t, WithURL(cl.URLs(0)...), WithNATSOptions(da.Options()...))
	b = newNet(t, WithURL(cl.URLs(1)...), WithNATSOptions(db.Options()...))
	return cl, a, b, da
}

// silent subscribes a handler in sc that never answers: its callers wait,
// as they would for a request lost with a server. It counts the requests.
func silent(t *testing.T, sc *Scope, subject string) *atomic.Int32 {
	t.Helper()
	var got atomic.Int32
	sub, err := sc.Subscribe(subject, func(*Msg) { got.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	flush(t, sc.net)
	return &got
}

// reach waits until a request in sc to an echo on subject is answered:
// the peers know each other's cards and the servers each other's
// subscriptions (routes learn them a moment after the subscribing server).
func reach(t *testing.T, sc *Scope, subject string, to PeerID) {
	t.Helper()
	waitUntil(t, "an answer across the servers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := sc.Request(ctx, subject, to, []byte("hi"))
		return err == nil
	})
}

type reqResult struct {
	err  error
	took time.Duration
}

// requestAsync sends a request in sc that may wait up to a minute.
func requestAsync(sc *Scope, subject string, to PeerID) <-chan reqResult {
	ch := make(chan reqResult, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := sc.Request(ctx, subject, to, []byte("x"))
		ch <- reqResult{err, time.Since(start)}
	}()
	return ch
}

// waitGot waits until a silent handler got k requests.
func waitGot(t *testing.T, got *atomic.Int32, k int32) {
	t.Helper()
	waitUntil(t, "the request delivered", func() bool { return got.Load() >= k })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func lostIn(t *testing.T, who string, ch <-chan reqResult) {
	t.Helper()
	select {
	case r := <-ch:
		if !errors.Is(r.err, ErrConnectionLost) {
			t.Fatalf("%s: %v after %v, want ErrConnectionLost", who, r.err, r.took)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: still waiting %v after the server crashed", who, waitTimeout)
	}
}

// TestServerCrashFailsCalls: a's server crashes while a waits on b and b
// waits on a. a reconnects to b's server; both calls fail at once with
// ErrConnectionLost, a's because its own connection dropped, b's because
// a's notice says so. A call a makes while disconnected is kept, and
// answered once a is back.
func TestServerCrashFailsCalls(t *testing.T) {
	cl, a, b, da := crashPair(t)
	id := scopeID("crash")
	scA, scB := a.Scope(id, testSecret), b.Scope(id, testSecret)
	gotA := silent(t, scA, a.Subject("quiet.a"))
	gotB := silent(t, scB, b.Subject("quiet.b"))
	echoIn(t, scB, b.Subject("echo"), "")
	echoIn(t, scA, a.Subject("echo.a"), "")
	reach(t, scA, b.Subject("echo"), b.ID())
	reach(t, scB, a.Subject("echo.a"), a.ID())
	fromA := requestAsync(scA, a.Subject("quiet.b"), b.ID())
	fromB := requestAsync(scB, b.Subject("quiet.a"), a.ID())
	waitGot(t, gotA, 1)
	waitGot(t, gotB, 1)

	da.SetSlow(300 * time.Millisecond)
	defer da.SetSlow(0)
	cl.Crash(0)
	waitUntil(t, "a to see its connection drop", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.connGen > 0
	})
	// Made while a has no server: the client sends it on reconnect.
	echoed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := scA.Request(ctx, b.Subject("echo"), b.ID(), []byte("again"))
		echoed <- err
	}()

	lostIn(t, "a's call", fromA)
	lostIn(t, "b's call", fromB)
	if err := <-echoed; err != nil {
		t.Fatalf("a call made while disconnected: %v", err)
	}
	if st := a.Stats(); st.Reconnects != 1 || st.CallsLost < 1 {
		t.Fatalf("a's stats: %+v", st)
	}
	if st := b.Stats(); st.CallsLost != 1 {
		t.Fatalf("b's stats: %+v", st)
	}
}

// TestReconnectNoticeForgedOrReplayed: a notice that does not verify, or
// that b took already, fails none of b's calls.
func TestReconnectNoticeForgedOrReplayed(t *testing.T) {
	cl, a, b, da := crashPair(t)
	id := scopeID("notice")
	scA, scB := a.Scope(id, testSecret), b.Scope(id, testSecret)
	gotA := silent(t, scA, a.Subject("quiet"))
	echoIn(t, scA, a.Subject("echo"), "")
	reach(t, scB, a.Subject("echo"), a.ID())
	// Capture a's notices as they are on the wire.
	spy, err := nats.Connect(cl.Servers[1].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	notices, err := spy.SubscribeSync(b.noticeSubject())
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	fromB := requestAsync(scB, b.Subject("quiet"), a.ID())
	waitGot(t, gotA, 1)
	da.SetSlow(50 * time.Millisecond)
	defer da.SetSlow(0)
	cl.Crash(0)
	lostIn(t, "b's call", fromB)
	genuine, err := notices.NextMsg(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}

	fromB = requestAsync(scB, b.Subject("quiet"), a.ID())
	waitGot(t, gotA, 2)
	refused := func(frame []byte) {
		t.Helper()
		before := b.Stats().Rejected
		if err := spy.Publish(b.noticeSubject(), frame); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the notice refused", func() bool { return b.Stats().Rejected > before })
	}
	refused(genuine.Data) // replayed
	forged := append([]byte(nil), genuine.Data...)
	forged[len(forged)-1] ^= 1
	refused(forged)
	newer := append([]byte(nil), genuine.Data...)
	newer[headerLen+16]++ // a later sequence number, under the old signature
	refused(newer)
	select {
	case r := <-fromB:
		t.Fatalf("b's call ended: %v", r.err)
	default:
	}
	if st := b.Stats(); st.CallsLost != 1 {
		t.Fatalf("b's stats: %+v", st)
	}
}

// TestHeartbeatTimeout: a heartbeat whose answer is lost fails after the
// heartbeat timeout, far below the RPC timeout, so Raft's next heartbeat
// goes out in time; an AppendEntries with entries keeps the RPC timeout.
func TestHeartbeatTimeout(t *testing.T) {
	fb := NewFaults()
	p := newPair(t, NewSecret(), nil, []Option{WithFaults(fb)})
	p.a.SetHeartbeatTimeout(200 * time.Millisecond)
	p.b.SetHeartbeatHandler(func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true}, nil)
	})
	var resp raft.AppendEntriesResponse
	if err := p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, 1), &resp); err != nil {
		t.Fatal(err)
	}
	fb.Partition(p.na.ID()) // b's answers are lost
	start := time.Now()
	err := p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, 1), &resp)
	if took := time.Since(start); !errors.Is(err, ErrUnreachable) || took > suiteTimeout/2 {
		t.Fatalf("a lost heartbeat: %v after %v; want ErrUnreachable well within the RPC timeout (%v)", err, took, suiteTimeout)
	}
	fb.Heal()
	if err := p.a.AppendEntries("b", p.b.LocalAddr(), heartbeat(p, 1), &resp); err != nil || !resp.Success {
		t.Fatalf("heartbeat after healing: %v %+v", err, resp)
	}
}

// TestPipelineLostAnswer: a pipelined AppendEntries whose answer is lost
// fails as soon as a later one is answered, not after the RPC timeout, and
// the answers still reach Raft in order.
func TestPipelineLostAnswer(t *testing.T) {
	fb := NewFaults()
	p := newPair(t, NewSecret(), nil, []Option{WithFaults(fb)})
	serve(t, p.b, func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: req.PrevLogEntry + 1}, nil)
	})
	// The nodes learn each other's cards.
	if err := p.a.AppendEntries("b", p.b.LocalAddr(), appendN(1), new(raft.AppendEntriesResponse)); err != nil {
		t.Fatal(err)
	}
	pl, err := p.a.AppendEntriesPipeline("b", p.b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	fb.Partition(p.na.ID()) // the first request is lost
	drops := p.nb.Stats().FaultDrops
	start := time.Now()
	if _, err := pl.AppendEntries(appendN(2), new(raft.AppendEntriesResponse)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the request dropped", func() bool { return p.nb.Stats().FaultDrops > drops })
	fb.Heal()
	if _, err := pl.AppendEntries(appendN(3), new(raft.AppendEntriesResponse)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		select {
		case f := <-pl.Consumer():
			err := f.Error()
			switch {
			case f.Request().PrevLogEntry != uint64(i-1):
				t.Fatalf("future %d came out of order", i)
			case i == 2 && !errors.Is(err, ErrUnreachable):
				t.Fatalf("the lost one: %v, want ErrUnreachable", err)
			case i == 3 && (err != nil || !f.Response().Success):
				t.Fatalf("the answered one: %v %+v", err, f.Response())
			}
		case <-time.After(waitTimeout):
			t.Fatalf("future %d never came", i)
		}
	}
	if took := time.Since(start); took > suiteTimeout/2 {
		t.Fatalf("the futures took %v; want well within the RPC timeout (%v)", took, suiteTimeout)
	}
}
