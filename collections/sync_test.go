package collections

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// A reader on another node that calls Sync after a write was acknowledged
// sees it: without Sync it would trail the leader by the time the commit
// takes to reach it, so a Sync that returned at once would fail here.
func TestSyncSeesAcknowledgedWrites(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, int](t, tn.node(), "sync", testOpts()...)
	r := openMapR[string, int](t, tn.node(), "sync", testOpts()...)
	online(t, w, r)
	for i := range 200 {
		k := strconv.Itoa(i)
		v := ok[Version](t)(w.Insert(tctx(t), k, i))
		got := ok[Version](t)(r.Sync(tctx(t)))
		if got < v {
			t.Fatalf("write %d: Sync returned version %d, the write is at %d", i, got, v)
		}
		if x, found := r.Get(k); !found || x != i {
			t.Fatalf("write %d at version %d: after Sync (version %d) the reader has %d, %v", i, v, got, x, found)
		}
	}
}

// Sync fails with ErrOffline when no leader can answer, and with ErrClosed
// on a closed handle.
func TestSyncErrors(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, int](t, tn.node(), "sync", testOpts()...)
	rn := tn.node()
	r := openMapR[string, int](t, rn, "sync", testOpts()...)
	online(t, w, r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := r.Sync(ctxT(t, 2*time.Second))
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("Sync with the only writer gone = %v after %v, want ErrOffline", err, time.Since(start))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(tctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync on a closed handle = %v, want ErrClosed", err)
	}
}
