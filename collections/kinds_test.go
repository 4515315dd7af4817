package collections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

// anyHandle is what the tests shared by Map, Vec and Set need of a handle.
type anyHandle interface {
	waiter
	Close() error
	Leader() (transport.PeerID, bool)
	Members() []groups.Member
	Len() int
}

// kind opens one collection type for the shared tests.
type kind struct {
	name   string
	writer func(n *transport.Network, name string, opts ...Option) (anyHandle, error)
	reader func(n *transport.Network, name string, opts ...Option) (anyHandle, error)
	// write makes the i-th write of a deterministic, varied workload on a
	// writer. Refusals (ErrOutOfRange, ErrEmpty) that concurrent writers
	// cause are not errors here.
	write func(ctx context.Context, h anyHandle, i int) (Version, error)
	// dump lists the contents in iteration order.
	dump func(h anyHandle) []string
	// watchEnd watches h and returns the error the watch ends with.
	watchEnd func(ctx context.Context, h anyHandle) error
}

func (k kind) openW(t testing.TB, n *transport.Network, name string, opts ...Option) anyHandle {
	t.Helper()
	return cleanup(t, must[anyHandle](t)(k.writer(n, name, append(testOpts(), opts...)...)))
}

func (k kind) openR(t testing.TB, n *transport.Network, name string, opts ...Option) anyHandle {
	t.Helper()
	return cleanup(t, must[anyHandle](t)(k.reader(n, name, append(testOpts(), opts...)...)))
}

// refusal turns a Vec refusal into success: the write still has a version.
func refusal(v Version, err error) (Version, error) {
	if errors.Is(err, ErrOutOfRange) || errors.Is(err, ErrEmpty) {
		return v, nil
	}
	return v, err
}

// watchEnd ranges over a watch and returns the error it ends with.
func watchEndOf[E any](seq func(func(E, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return errors.New("watch ended without an error")
}

var kinds = []kind{
	{
		name: "map",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewMapWriter[string, int](n, name, opts...)
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewMapReader[string, int](n, name, opts...)
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			w := h.(*MapWriter[string, int])
			k := fmt.Sprintf("k%02d", i%23)
			switch i % 6 {
			case 3:
				return w.Remove(ctx, k)
			case 4:
				v, _, err := w.CompareExchange(ctx, k, nil, &i)
				return v, err
			case 5:
				return w.Extend(ctx, func(yield func(string, int) bool) {
					_ = yield(k, i) && yield(fmt.Sprintf("k%02d", (i+7)%23), -i)
				})
			default:
				return w.Insert(ctx, k, i)
			}
		},
		dump: func(h anyHandle) []string {
			var out []string
			var all func(func(string, int) bool)
			switch m := h.(type) {
			case *MapWriter[string, int]:
				all = m.All()
			case *MapReader[string, int]:
				all = m.All()
			}
			for k, v := range all {
				out = append(out, fmt.Sprintf("%s=%d", k, v))
			}
			return out
		},
		watchEnd: func(ctx context.Context, h anyHandle) error {
			switch m := h.(type) {
			case *MapWriter[string, int]:
				return watchEndOf(m.Watch(ctx))
			case *MapReader[string, int]:
				return watchEndOf(m.Watch(ctx))
			}
			panic("not a map")
		},
	},
	{
		name: "vec",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewVecWriter[int](n, name, opts...)
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewVecReader[int](n, name, opts...)
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			w := h.(*VecWriter[int])
			switch i % 8 {
			case 0:
				return w.PushFront(ctx, i)
			case 1:
				return refusal(w.Insert(ctx, 1, i))
			case 2:
				return refusal(w.Swap(ctx, 0, 1))
			case 3:
				_, v, err := w.PopFront(ctx)
				return refusal(v, err)
			case 4:
				return refusal(w.Remove(ctx, 2))
			case 5:
				return w.Extend(ctx, func(yield func(int) bool) { _ = yield(i) && yield(-i) })
			default:
				return w.PushBack(ctx, i)
			}
		},
		dump: func(h anyHandle) []string {
			var out []string
			var all func(func(int, int) bool)
			switch m := h.(type) {
			case *VecWriter[int]:
				all = m.All()
			case *VecReader[int]:
				all = m.All()
			}
			for i, v := range all {
				out = append(out, fmt.Sprintf("%d:%d", i, v))
			}
			return out
		},
		watchEnd: func(ctx context.Context, h anyHandle) error {
			switch m := h.(type) {
			case *VecWriter[int]:
				return watchEndOf(m.Watch(ctx))
			case *VecReader[int]:
				return watchEndOf(m.Watch(ctx))
			}
			panic("not a vec")
		},
	},
	{
		name: "set",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewSetWriter[string](n, name, opts...)
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewSetReader[string](n, name, opts...)
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			w := h.(*SetWriter[string])
			x := fmt.Sprintf("e%02d", i%19)
			switch i % 5 {
			case 2:
				return w.Remove(ctx, x)
			case 4:
				return w.Extend(ctx, func(yield func(string) bool) {
					_ = yield(x) && yield(fmt.Sprintf("e%02d", (i+5)%19))
				})
			default:
				return w.Insert(ctx, x)
			}
		},
		dump: func(h anyHandle) []string {
			var out []string
			var all func(func(string) bool)
			switch m := h.(type) {
			case *SetWriter[string]:
				all = m.All()
			case *SetReader[string]:
				all = m.All()
			}
			for x := range all {
				out = append(out, x)
			}
			return out
		},
		watchEnd: func(ctx context.Context, h anyHandle) error {
			switch m := h.(type) {
			case *SetWriter[string]:
				return watchEndOf(m.Watch(ctx))
			case *SetReader[string]:
				return watchEndOf(m.Watch(ctx))
			}
			panic("not a set")
		},
	},
	{
		name: "pqueue",
		writer: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewPriorityQueueWriter[int, string, int](n, name, opts...)
		},
		reader: func(n *transport.Network, name string, opts ...Option) (anyHandle, error) {
			return NewPriorityQueueReader[int, string, int](n, name, opts...)
		},
		write: func(ctx context.Context, h anyHandle, i int) (Version, error) {
			w := h.(*PriorityQueueWriter[int, string, int])
			k := fmt.Sprintf("k%02d", i%13)
			switch i % 7 {
			case 1:
				_, v, err := w.PopMin(ctx)
				if errors.Is(err, ErrEmpty) {
					err = nil // a write all the same
				}
				return v, err
			case 2:
				return w.Remove(ctx, k)
			case 3:
				v, _, err := w.UpdatePriority(ctx, k, -i)
				return v, err
			case 4:
				v, _, err := w.Extend(ctx, func(yield func(PQEntry[int, string, int]) bool) {
					_ = yield(PQEntry[int, string, int]{i % 5, k, i}) && yield(PQEntry[int, string, int]{i % 3, fmt.Sprintf("k%02d", (i+7)%13), -i})
				})
				return v, err
			case 5:
				_, v, err := w.PopMax(ctx)
				if errors.Is(err, ErrEmpty) {
					err = nil
				}
				return v, err
			default:
				v, _, err := w.Insert(ctx, i%5, k, i)
				return v, err
			}
		},
		dump: func(h anyHandle) []string {
			var out []string
			var all func(func(PQEntry[int, string, int]) bool)
			switch q := h.(type) {
			case *PriorityQueueWriter[int, string, int]:
				all = q.All()
			case *PriorityQueueReader[int, string, int]:
				all = q.All()
			}
			for e := range all {
				out = append(out, fmt.Sprintf("%d:%s=%d", e.Priority, e.Key, e.Value))
			}
			return out
		},
		watchEnd: func(ctx context.Context, h anyHandle) error {
			switch q := h.(type) {
			case *PriorityQueueWriter[int, string, int]:
				return watchEndOf(q.Watch(ctx))
			case *PriorityQueueReader[int, string, int]:
				return watchEndOf(q.Watch(ctx))
			}
			panic("not a priority queue")
		},
	},
}

// forKinds runs f as a subtest for Map, Vec and Set.
func forKinds(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// forKindsParallel is forKinds with the three subtests running at once,
// for tests that mostly wait for something not to happen.
func forKindsParallel(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k)
		})
	}
}

// eventually polls cond until it holds, for conditions no When method
// waits on (membership as a member sees it).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameContents fails unless every handle holds the same contents, in the
// same iteration order.
func sameContents(t testing.TB, k kind, hs ...anyHandle) []string {
	t.Helper()
	want := k.dump(hs[0])
	for i, h := range hs[1:] {
		got := k.dump(h)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("handle %d at version %d holds\n%v\nhandle 0 at version %d holds\n%v", i+1, h.Version(), got, hs[0].Version(), want)
		}
	}
	return want
}

func waiters(hs ...anyHandle) []waiter {
	out := make([]waiter, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}
