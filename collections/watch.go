package collections

import (
	"context"
	"iter"
	"sort"
	"sync"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
)

// EventKind says what a watch Event carries.
type EventKind uint8

const (
	// Changed events carry every change of one command, at its version.
	Changed EventKind = 1 + iota
	// Initial events carry the state at the start of the watch, as inserts,
	// in pages; all share the version of that state.
	Initial
	// CaughtUp follows the last Initial event: the watcher holds the state
	// at its version, and Changed events follow.
	CaughtUp
)

func (k EventKind) String() string {
	switch k {
	case Changed:
		return "changed"
	case Initial:
		return "initial"
	case CaughtUp:
		return "caught-up"
	}
	return "unknown"
}

// Op is the kind of one change.
type Op uint8

const (
	// OpInsert adds or replaces an entry (Map, Set), or inserts an element at
	// Index (Vec).
	OpInsert Op = 1 + iota
	// OpRemove removes an entry, or the element at Index.
	OpRemove
	// OpClear removes everything.
	OpClear
	// OpSet replaces the Vec element at Index.
	OpSet
	// OpTruncate shortens a Vec to Index elements.
	OpTruncate
)

// wire is o in the inspect protocol, whose numbering is its own.
func (o Op) wire() inspectwire.ChangeOp {
	switch o {
	case OpInsert:
		return inspectwire.ChangeInsert
	case OpRemove:
		return inspectwire.ChangeRemove
	case OpClear:
		return inspectwire.ChangeClear
	case OpSet:
		return inspectwire.ChangeSet
	case OpTruncate:
		return inspectwire.ChangeTruncate
	}
	return 0
}

func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpRemove:
		return "remove"
	case OpClear:
		return "clear"
	case OpSet:
		return "set"
	case OpTruncate:
		return "truncate"
	}
	return "unknown"
}

// Event is one step of a watch. The Changes slice belongs to the receiver.
type Event[C any] struct {
	Kind    EventKind
	Version Version
	Changes []C
}

// WatchOption configures Watch.
type WatchOption func(*watchOptions)

type watchOptions struct {
	from    Version
	resume  bool
	initial bool
	keys    any // a WatchRange's KeyRange; only a Map watch takes one
}

// FromVersion resumes a watch after version v: the first event is the first
// command applied after v. If changes after v are no longer kept, the watch
// yields ErrCompacted.
func FromVersion(v Version) WatchOption {
	return func(o *watchOptions) { o.from, o.resume = v, true }
}

// WithInitial starts the watch with the current state, as Initial events,
// then a CaughtUp event, then every change after it.
func WithInitial() WatchOption { return func(o *watchOptions) { o.initial = true } }

// record is the changes of one applied command.
type record[C any] struct {
	v       Version
	changes []C
}

// history keeps the changes of the last applied commands for watchers. The
// machine appends under a short lock; watchers copy out under a read lock,
// so a slow watcher never holds up Apply: it falls behind, and past the
// history's length it gets ErrCompacted.
//
// The ring starts small and doubles as commands arrive, up to limit: a
// collection that is rarely written holds little, however long its limit.
type history[C any] struct {
	mu    sync.RWMutex
	recs  []record[C] // ring
	start int
	n     int
	limit int     // the most records kept
	floor Version // every change after floor is kept
	wake  chan struct{}
}

// historyStart is the ring's first size.
const historyStart = 16

func newHistory[C any](limit int) *history[C] {
	return &history[C]{recs: make([]record[C], min(limit, historyStart)), limit: limit, wake: make(chan struct{})}
}

// grow doubles the ring, up to limit, keeping its records in order.
func (h *history[C]) grow() {
	recs := make([]record[C], min(2*len(h.recs), h.limit))
	for i := range h.n {
		recs[i] = h.recs[(h.start+i)%len(h.recs)]
	}
	h.recs, h.start = recs, 0
}

// add appends the records of a published batch and wakes the watchers.
func (h *history[C]) add(recs []record[C]) {
	h.mu.Lock()
	for _, r := range recs {
		if h.n == len(h.recs) && len(h.recs) < h.limit {
			h.grow()
		}
		if h.n == len(h.recs) {
			h.floor = h.recs[h.start].v
			h.recs[h.start] = record[C]{}
			h.start = (h.start + 1) % len(h.recs)
			h.n--
		}
		h.recs[(h.start+h.n)%len(h.recs)] = r
		h.n++
	}
	wake := h.wake
	h.wake = make(chan struct{})
	h.mu.Unlock()
	close(wake)
}

// stage holds what a machine applied since it last published: the version
// it reached and each command's changes, for the history on publish.
type stage[C any] struct {
	v    Version
	recs []record[C]
}

func (s *stage[C]) applied(v Version, changes []C) {
	s.v = v
	s.recs = append(s.recs, record[C]{v, changes})
}

func (s *stage[C]) pending() bool { return len(s.recs) > 0 }

// flush hands the staged records to h.
func (s *stage[C]) flush(h *history[C]) {
	h.add(s.recs)
	clear(s.recs)
	s.recs = s.recs[:0]
}

// reset forgets everything: the state was replaced at version v.
func (h *history[C]) reset(v Version) {
	h.mu.Lock()
	h.recs = make([]record[C], min(h.limit, historyStart))
	h.start, h.n, h.floor = 0, 0, v
	wake := h.wake
	h.wake = make(chan struct{})
	h.mu.Unlock()
	close(wake)
}

// since returns up to max records after v, and a channel closed when more
// arrive. It fails with ErrCompacted when changes after v are gone.
func (h *history[C]) since(v Version, max int) ([]record[C], <-chan struct{}, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v < h.floor {
		return nil, nil, ErrCompacted
	}
	at := func(i int) record[C] { return h.recs[(h.start+i)%len(h.recs)] }
	i := sort.Search(h.n, func(i int) bool { return at(i).v > v })
	var out []record[C]
	for ; i < h.n && len(out) < max; i++ {
		out = append(out, at(i))
	}
	return out, h.wake, nil
}

// changed returns a channel closed when records are added, or the
// history is reset.
func (h *history[C]) changed() <-chan struct{} {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.wake
}

const initialPage = 1024

// watch streams a machine's changes; snapshot, if the watch wants the
// initial state, returns the state's changes and version.
func watch[C any](ctx context.Context, closed <-chan struct{}, hist *history[C], now func() Version,
	snapshot func() (Version, iter.Seq[C]), opts []WatchOption) iter.Seq2[Event[C], error] {
	var o watchOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(Event[C], error) bool) {
		if o.keys != nil {
			yield(Event[C]{}, ErrKeyRange)
			return
		}
		after := now()
		if o.resume {
			after = o.from
		}
		if o.initial {
			v, all := snapshot()
			page := make([]C, 0, initialPage)
			for c := range all {
				page = append(page, c)
				if len(page) == initialPage {
					if !yield(Event[C]{Kind: Initial, Version: v, Changes: page}, nil) {
						return
					}
					page = make([]C, 0, initialPage)
				}
			}
			if len(page) > 0 && !yield(Event[C]{Kind: Initial, Version: v, Changes: page}, nil) {
				return
			}
			if !yield(Event[C]{Kind: CaughtUp, Version: v}, nil) {
				return
			}
			after = v
		}
		for {
			recs, more, err := hist.since(after, 256)
			if err != nil {
				yield(Event[C]{}, err)
				return
			}
			for _, r := range recs {
				after = r.v
				if len(r.changes) == 0 {
					continue // a command that changed nothing
				}
				if !yield(Event[C]{Kind: Changed, Version: r.v, Changes: append([]C(nil), r.changes...)}, nil) {
					return
				}
			}
			if len(recs) > 0 {
				continue
			}
			select {
			case <-more:
			case <-ctx.Done():
				yield(Event[C]{}, ctx.Err())
				return
			case <-closed:
				yield(Event[C]{}, ErrClosed)
				return
			}
		}
	}
}
