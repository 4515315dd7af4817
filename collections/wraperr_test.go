package collections

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
)

// A write that committed but did not apply here says so once, in this
// package's words, and still matches ErrClosed when the handle closed.
func TestWrapErrNotAppliedHere(t *testing.T) {
	err := wrapErr(fmt.Errorf("%w: index %d: %w", groups.ErrNotAppliedHere, 7, groups.ErrClosed))
	for _, want := range []error{ErrNotAppliedHere, ErrClosed, groups.ErrNotAppliedHere, groups.ErrClosed} {
		if !errors.Is(err, want) {
			t.Errorf("%v does not match %v", err, want)
		}
	}
	if errors.Is(err, ErrNotApplied) || errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("%v matches ErrNotApplied or ErrOutcomeUnknown; the write committed", err)
	}
	if got, want := err.Error(), "collections: written, not yet applied on this node: index 7: groups: closed"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// An operator command reaching a handle that closed is answered as closed,
// whichever layer noticed.
func TestOperatorCodeClosed(t *testing.T) {
	for _, err := range []error{ErrClosed, groups.ErrClosed, wrapErr(groups.ErrClosed)} {
		if c := operatorCode(err); c != inspectwire.Closed {
			t.Errorf("operatorCode(%v) = %d, want inspectwire.Closed", err, c)
		}
	}
}
