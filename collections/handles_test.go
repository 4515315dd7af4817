package collections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Two writers and two readers on four nodes write concurrently; every
// replica ends with the same contents in the same iteration order.
func TestFourNodesConcurrentWriters(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w1 := k.openW(t, tn.node(), "c")
		w2 := k.openW(t, tn.node(), "c")
		r1 := k.openR(t, tn.node(), "c")
		r2 := k.openR(t, tn.node(), "c")
		online(t, w1, w2, r1, r2)
		const perWriter = 60
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for j, w := range []anyHandle{w1, w2} {
			wg.Go(func() {
				for i := range perWriter {
					if _, err := k.write(tctx(t), w, j*1000+i); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Some interleavings end in removals that leave a queue empty; one
		// more add (write 0 adds in every kind) leaves something to compare.
		ok[Version](t)(k.write(tctx(t), w1, 0))
		settle(t, w1, w2, r1, r2)
		if got := sameContents(t, k, w1, w2, r1, r2); len(got) == 0 {
			t.Fatal("the workload left the collection empty; the comparison proves little")
		}
		v := w1.Version()
		for _, h := range []anyHandle{w2, r1, r2} {
			if h.Version() != v {
				t.Fatalf("versions differ after settling: %d and %d", v, h.Version())
			}
		}
	})
}

// A writer that joins an existing collection catches up and can write.
func TestLateWriter(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w1 := k.openW(t, tn.node(), "c")
		r := k.openR(t, tn.node(), "c")
		online(t, w1, r)
		for i := range 20 {
			ok[Version](t)(k.write(tctx(t), w1, i))
		}
		w2 := k.openW(t, tn.node(), "c")
		online(t, w2)
		reach(t, w1.Version(), w2)
		sameContents(t, k, w1, w2, r)
		var v Version
		for i := 20; i < 40; i++ {
			v = ok[Version](t)(k.write(tctx(t), w2, i))
		}
		reach(t, v, w1, r)
		sameContents(t, k, w1, w2, r)
		eventually(t, "the late writer to become a voter", func() bool {
			voters := 0
			for _, m := range w1.Members() {
				if m.Voter {
					voters++
				}
			}
			return voters == 2
		})
	})
}

// Readers join as observers: they are never leader and never voters.
func TestReaderNeverLeads(t *testing.T) {
	forKindsParallel(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		wn, rn1, rn2 := tn.node(), tn.node(), tn.node()
		w := k.openW(t, wn, "c")
		r1 := k.openR(t, rn1, "c")
		r2 := k.openR(t, rn2, "c")
		online(t, w, r1, r2)
		check := func() {
			t.Helper()
			for _, h := range []anyHandle{w, r1, r2} {
				l, ok := h.Leader()
				if ok && (l == rn1.ID() || l == rn2.ID()) {
					t.Fatalf("a reader (%s) leads", l.Short())
				}
			}
		}
		check()
		var v Version
		for i := range 20 {
			v = ok[Version](t)(k.write(tctx(t), w, i))
			check()
		}
		reach(t, v, r1, r2)
		check()
		eventually(t, "both readers to show as non-voters", func() bool {
			seen := 0
			for _, m := range w.Members() {
				switch m.Peer {
				case rn1.ID(), rn2.ID():
					if m.Voter {
						t.Fatalf("reader %s is a voter", m.Peer.Short())
					}
					if m.Leader {
						t.Fatalf("reader %s leads", m.Peer.Short())
					}
					seen++
				case wn.ID():
					if !m.Voter {
						t.Fatal("the writer is not a voter")
					}
				}
			}
			return seen == 2
		})
		for _, m := range r1.Members() {
			if m.Peer == rn1.ID() && m.Voter {
				t.Fatal("the reader sees itself as a voter")
			}
		}
		// Without the writer, the readers lose their leader and none of
		// them takes over.
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		for _, r := range []anyHandle{r1, r2} {
			if err := r.When().Offline(tctx(t)); err != nil {
				t.Fatalf("reader offline after the writer left: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r1.When().Online(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("readers alone came online: %v", err)
		}
		check()
	})
}

// A collection opened only by readers has no leader and never comes online.
func TestOnlyReadersNeverOnline(t *testing.T) {
	forKindsParallel(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		r1 := k.openR(t, tn.node(), "c")
		r2 := k.openR(t, tn.node(), "c")
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if err := r1.When().Online(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Online: %v, want the context's deadline", err)
		}
		for _, r := range []anyHandle{r1, r2} {
			if l, ok := r.Leader(); ok {
				t.Fatalf("a group of readers has leader %s", l.Short())
			}
		}
	})
}

// After Close, writes and waits return ErrClosed, Close is idempotent and
// prompt, and reads keep answering from the last state.
func TestClosedHandle(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w := k.openW(t, tn.node(), "c")
		r := k.openR(t, tn.node(), "c")
		online(t, w, r)
		var v Version
		for i := range 5 {
			v = ok[Version](t)(k.write(tctx(t), w, i))
		}
		reach(t, v, r)
		before := k.dump(w)

		for _, h := range []anyHandle{r, w} {
			start := time.Now()
			if err := closeOf(t, h); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Close took %v", d)
			}
			start = time.Now()
			if err := closeOf(t, h); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Fatalf("second Close took %v", d)
			}
			isErr(t, h.When().Online(tctx(t)), ErrClosed, "Online after Close")
			isErr(t, h.When().Updated(tctx(t)), ErrClosed, "Updated after Close")
			isErr(t, h.When().Reaches(tctx(t), v+1000), ErrClosed, "Reaches after Close")
			isErr(t, k.watchEnd(tctx(t), h), ErrClosed, "Watch after Close")
			if got := k.dump(h); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("reads after Close: %v, want %v", got, before)
			}
			if err := h.When().Reaches(tctx(t), v); err != nil {
				t.Fatalf("Reaches a version already held, after Close: %v", err)
			}
		}
		_, err := k.write(tctx(t), w, 100)
		isErr(t, err, ErrClosed, "write after Close")
	})
}

// A reader closing right after the last writer left (a whole service
// shutting down) returns promptly: it must not spend its whole close budget
// asking the departed leader to remove it.
func TestReaderClosePromptAfterWriterLeaves(t *testing.T) {
	forKindsParallel(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w := k.openW(t, tn.node(), "c")
		r := k.openR(t, tn.node(), "c")
		online(t, w, r)
		reach(t, ok[Version](t)(k.write(tctx(t), w, 0)), r)
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := closeOf(t, r); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("reader Close took %v after the writer left", d)
		}
	})
}

// A wait in progress when the handle closes ends with ErrClosed.
func TestCloseWakesWaiters(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w := k.openW(t, tn.node(), "c")
		online(t, w)
		reaches := make(chan error, 1)
		watch := make(chan error, 1)
		go func() { reaches <- w.When().Reaches(tctx(t), w.Version()+1000) }()
		go func() { watch <- k.watchEnd(tctx(t), w) }()
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		isErr(t, <-reaches, ErrClosed, "Reaches in progress at Close")
		isErr(t, <-watch, ErrClosed, "Watch in progress at Close")
	})
}

// When().Offline is a wait like the others: on a closed handle it returns
// ErrClosed, whether called after Close or waiting when Close happens. (It
// must not report "offline" as if the group had lost its leader: the
// handle is gone, and callers looping on Online/Offline would spin.)
func TestClosedHandleOffline(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		w := k.openW(t, tn.node(), "c")
		online(t, w)
		waiting := make(chan error, 1)
		go func() { waiting <- w.When().Offline(tctx(t)) }()
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		isErr(t, <-waiting, ErrClosed, "Offline in progress at Close")
		isErr(t, w.When().Offline(tctx(t)), ErrClosed, "Offline after Close")
	})
}

// Closing the network under a handle closes the handle: writes, waits and
// watches end with ErrClosed.
func TestNetworkClosedUnderHandle(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		n := tn.node()
		w := k.openW(t, n, "c")
		online(t, w)
		v := ok[Version](t)(k.write(tctx(t), w, 0))
		if err := closeOf(t, n); err != nil {
			t.Fatal(err)
		}
		_, err := k.write(tctx(t), w, 1)
		isErr(t, err, ErrClosed, "write after the network closed")
		isErr(t, w.When().Reaches(tctx(t), v+1000), ErrClosed, "Reaches after the network closed")
		isErr(t, w.When().Online(tctx(t)), ErrClosed, "Online after the network closed")
		start := time.Now()
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Close after the network closed took %v", d)
		}
	})
}

// A watch on a handle whose network closes ends with ErrClosed, like every
// other wait; it must not hang until its context ends.
func TestNetworkClosedEndsWatch(t *testing.T) {
	forKindsParallel(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		n := tn.node()
		w := k.openW(t, n, "c")
		online(t, w)
		ok[Version](t)(k.write(tctx(t), w, 0))
		watchErr := make(chan error, 1)
		go func() { watchErr <- k.watchEnd(ctxT(t, 2*time.Second), w) }()
		if err := closeOf(t, n); err != nil {
			t.Fatal(err)
		}
		isErr(t, <-watchErr, ErrClosed, "Watch after the network closed")
	})
}

// One network holds one handle per collection; the name and types make
// the collection.
func TestAlreadyOpen(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		n := tn.node()
		w := k.openW(t, n, "c")
		_, err := k.writer(n, "c", testOpts()...)
		isErr(t, err, ErrAlreadyOpen, "a second writer")
		_, err = k.reader(n, "c", testOpts()...)
		isErr(t, err, ErrAlreadyOpen, "a reader beside the writer")
		other := k.openW(t, n, "other")
		online(t, w, other)
		if err := closeOf(t, w); err != nil {
			t.Fatal(err)
		}
		r := k.openR(t, n, "c")
		if err := closeOf(t, r); err != nil {
			t.Fatal(err)
		}
	})
}

// A writer closing gracefully, even the leader, leaves the collection
// working for the other writer.
func TestWriterCloseLeavesOthersWorking(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		tn := newTestNet(t)
		n1, n2 := tn.node(), tn.node()
		w1 := k.openW(t, n1, "c")
		w2 := k.openW(t, n2, "c")
		r := k.openR(t, tn.node(), "c")
		online(t, w1, w2, r)
		for i := range 10 {
			ok[Version](t)(k.write(tctx(t), w1, i))
			ok[Version](t)(k.write(tctx(t), w2, 100+i))
		}
		leaving, staying := w1, w2
		if l, _ := w1.Leader(); l == n2.ID() {
			leaving, staying = w2, w1
		}
		start := time.Now()
		if err := closeOf(t, leaving); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Close took %v", d)
		}
		var v Version
		for i := range 10 {
			v = ok[Version](t)(k.write(tctx(t), staying, 200+i))
		}
		reach(t, v, r)
		sameContents(t, k, staying, r)
	})
}

// Closing a writer right after it comes online, while it has just been
// elected and is still writing its first entry, returns promptly. The
// window is narrow: this catches a Close that hangs there in a fraction of
// runs (and reliably under -race or -count=20).
func TestCloseRightAfterOnline(t *testing.T) {
	cfg := testGroupConfig()
	cfg.BootstrapDelay = 50 * time.Millisecond
	tn := newTestNet(t)
	n := tn.node()
	for i := range 20 {
		w, err := NewMapWriter[string, int](n, fmt.Sprint("c", i), WithGroupConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		online(t, w)
		done := make(chan struct{})
		go func() {
			w.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d: Close of a writer just online hangs; goroutines of this module:\n%s", i, moduleStacks())
		}
	}
}
