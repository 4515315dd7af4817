package collections

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

var (
	bigKey   = strings.Repeat("k", MaxKeySize)
	bigValue = make([]byte, MaxValueSize)
	bigElem  = strings.Repeat("e", MaxValueSize)
)

// A key over MaxKeySize or a value over MaxValueSize is ErrTooLarge,
// nothing changes, and the collection keeps working.
func TestMapLimits(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, []byte](t, tn.node(), "m")
	r := openMapR[string, []byte](t, tn.node(), "m")
	online(t, w, r)
	v0 := ok[Version](t)(w.Insert(tctx(t), "small", []byte("v")))
	// Just under the limits is fine.
	okKey := strings.Repeat("k", MaxKeySize-16)
	okVal := make([]byte, MaxValueSize-16)
	v0 = ok[Version](t)(w.Insert(tctx(t), okKey, okVal))
	small, big := []byte("v"), bigValue
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Insert with a big key", errOf(w.Insert(tctx(t), bigKey, small))},
		{"Insert with a big value", errOf(w.Insert(tctx(t), "k", big))},
		{"Remove with a big key", errOf(w.Remove(tctx(t), bigKey))},
		{"CompareExchange with a big key", errOf3(w.CompareExchange(tctx(t), bigKey, nil, &small))},
		{"CompareExchange with a big expected value", errOf3(w.CompareExchange(tctx(t), "small", &big, &small))},
		{"CompareExchange with a big replacement", errOf3(w.CompareExchange(tctx(t), "small", &small, &big))},
		{"Extend with a big value among small ones", errOf(w.Extend(tctx(t), func(yield func(string, []byte) bool) {
			_ = yield("x1", small) && yield("x2", big) && yield("x3", small)
		}))},
		{"Extend with a big key among small ones", errOf(w.Extend(tctx(t), func(yield func(string, []byte) bool) {
			_ = yield("x1", small) && yield(bigKey, small) && yield("x3", small)
		}))},
	} {
		isErr(t, c.err, ErrTooLarge, c.name)
		if w.Len() != 2 || w.Version() != v0 {
			t.Fatalf("%s changed the map: %d entries at version %d, want 2 at %d", c.name, w.Len(), w.Version(), v0)
		}
	}
	v := ok[Version](t)(w.Insert(tctx(t), "after", small))
	reach(t, v, r)
	if r.Len() != 3 || r.ContainsKey("x1") || r.ContainsKey("k") {
		t.Fatalf("reader holds %d entries: %v", r.Len(), slices.Collect(r.Keys())[:min(r.Len(), 5)])
	}
	if got, _ := r.Get(okKey); len(got) != len(okVal) {
		t.Fatalf("the value just under the limit reads back as %d bytes", len(got))
	}
}

func TestVecLimits(t *testing.T) {
	tn := newTestNet(t)
	w := openVecW[string](t, tn.node(), "v")
	r := openVecR[string](t, tn.node(), "v")
	online(t, w, r)
	v0 := ok[Version](t)(w.PushBack(tctx(t), "a"))
	for _, c := range []struct {
		name string
		err  error
	}{
		{"PushBack", errOf(w.PushBack(tctx(t), bigElem))},
		{"PushFront", errOf(w.PushFront(tctx(t), bigElem))},
		{"Insert", errOf(w.Insert(tctx(t), 0, bigElem))},
		{"Extend", errOf(w.Extend(tctx(t), slices.Values([]string{"x", bigElem, "y"})))},
	} {
		isErr(t, c.err, ErrTooLarge, c.name)
		if w.Len() != 1 || w.Version() != v0 {
			t.Fatalf("%s changed the vector: %d elements at version %d", c.name, w.Len(), w.Version())
		}
	}
	reach(t, ok[Version](t)(w.PushBack(tctx(t), "b")), r)
	wantVec(t, "reader", r, []string{"a", "b"})
}

func TestSetLimits(t *testing.T) {
	tn := newTestNet(t)
	w := openSetW[string](t, tn.node(), "s")
	r := openSetR[string](t, tn.node(), "s")
	online(t, w, r)
	v0 := ok[Version](t)(w.Insert(tctx(t), "a"))
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Insert", errOf(w.Insert(tctx(t), bigElem))},
		{"Remove", errOf(w.Remove(tctx(t), bigElem))},
		{"Extend", errOf(w.Extend(tctx(t), slices.Values([]string{"x", bigElem, "y"})))},
	} {
		isErr(t, c.err, ErrTooLarge, c.name)
		if w.Len() != 1 || w.Version() != v0 {
			t.Fatalf("%s changed the set: %d elements at version %d", c.name, w.Len(), w.Version())
		}
	}
	reach(t, ok[Version](t)(w.Insert(tctx(t), "b")), r)
	wantSet(t, "reader", r, []string{"a", "b"})
}

// An Extend longer than one run (groups.MaxBatchCommands) with an entry
// over the limit near its end must not be half-applied (DESIGN §11:
// "nothing half-applied"): the error is known before anything needs to be
// sent.
func TestExtendOverLimitAppliesNothing(t *testing.T) {
	tn := newTestNet(t)
	w := openMapW[string, []byte](t, tn.node(), "m")
	online(t, w)
	v0 := w.Version()
	_, err := w.Extend(tctx(t), func(yield func(string, []byte) bool) {
		for i := range 5000 {
			if !yield(fmt.Sprintf("k%05d", i), []byte("v")) {
				return
			}
		}
		yield("too-large", bigValue)
	})
	isErr(t, err, ErrTooLarge, "Extend with a big value at the end")
	if w.Len() != 0 || w.Version() != v0 {
		t.Fatalf("a failed Extend was half-applied: %d entries, version %d -> %d", w.Len(), v0, w.Version())
	}
}

func errOf(_ Version, err error) error          { return err }
func errOf3(_ Version, _ bool, err error) error { return err }

// An Extend whose entries together exceed groups.MaxBatchSize is cut into
// runs the group accepts, for every kind. The map's values are sized so that
// 40 commands fit the limit by their keys and values alone but not with
// their framing: a run cut that left the framing out would fail.
func TestExtendCutBySize(t *testing.T) {
	tn := newTestNet(t)
	const k = 40
	// A key "k000" encodes to 5 bytes, a value of this length to 5 more
	// than it; a map command adds 3.
	val := make([]byte, groups.MaxBatchSize/k-10)
	n := 2*k + 3
	m := openMapW[string, []byte](t, tn.node(), "m")
	v := openVecW[[]byte](t, tn.node(), "v")
	s := openSetW[string](t, tn.node(), "s")
	online(t, m, v, s)
	// 24 MB of Extends under -race on a loaded 2-core machine take well
	// over tctx's 10 s: wait on them with room to spare.
	bigCtx := ctxT(t, 2*time.Minute)
	ok[Version](t)(m.Extend(bigCtx, func(yield func(string, []byte) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("k%03d", i), val) {
				return
			}
		}
	}))
	ok[Version](t)(v.Extend(bigCtx, func(yield func([]byte) bool) {
		for range n {
			if !yield(val) {
				return
			}
		}
	}))
	elem := strings.Repeat("x", len(val))
	ok[Version](t)(s.Extend(bigCtx, func(yield func(string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("%03d", i) + elem[3:]) {
				return
			}
		}
	}))
	if m.Len() != n || v.Len() != n || s.Len() != n {
		t.Fatalf("after Extend: map %d, vec %d, set %d entries, want %d each", m.Len(), v.Len(), s.Len(), n)
	}
}

// TestErrorsReadOnce: an error from below reads as this package says it,
// once, and still matches both packages' sentinels.
func TestErrorsReadOnce(t *testing.T) {
	for _, c := range []struct {
		in   error
		want string
		is   []error
	}{
		{groups.ErrClosed, "collections: closed", []error{ErrClosed, groups.ErrClosed}},
		{transport.ErrClosed, "collections: closed", []error{ErrClosed, transport.ErrClosed}},
		{fmt.Errorf("%w: context deadline exceeded", groups.ErrOffline), "collections: offline: context deadline exceeded", []error{ErrOffline, groups.ErrOffline}},
		{fmt.Errorf("%w: batch of 9 MB", groups.ErrTooLarge), "collections: too large: batch of 9 MB", []error{ErrTooLarge, groups.ErrTooLarge}},
		{fmt.Errorf("write: %w", groups.ErrClosed), "collections: closed: write: groups: closed", []error{ErrClosed, groups.ErrClosed}},
	} {
		got := wrapErr(c.in)
		if got.Error() != c.want {
			t.Errorf("%q reads %q, want %q", c.in, got, c.want)
		}
		for _, target := range c.is {
			if !errors.Is(got, target) {
				t.Errorf("%q does not match %q", got, target)
			}
		}
	}
}
