package collections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
)

// ErrKeyRange is what a watch yields when its WatchRange does not fit the
// collection: a key range on a Vec or Set, or bounds whose type does not
// convert to the Map's key type without loss.
var ErrKeyRange = errors.New("collections: key range does not fit the collection's keys")

// KeyRange is a set of Map keys between two bounds, in the map's key order
// (see Map's key order in the README): a lower bound that is included, an
// upper bound that is not, either of them absent. Make one with Between,
// AtLeast, Below or Prefix; the zero value holds every key. A KeyRange is
// a small value, safe to copy and to share.
type KeyRange[K any] struct{ b keyBounds[K] }

// Between holds the keys k with lo <= k < hi; none if lo >= hi.
func Between[K any](lo, hi K) KeyRange[K] {
	return KeyRange[K]{keyBounds[K]{lo: lo, hi: hi, hasLo: true, hasHi: true}}
}

// AtLeast holds the keys k with k >= lo.
func AtLeast[K any](lo K) KeyRange[K] { return KeyRange[K]{keyBounds[K]{lo: lo, hasLo: true}} }

// Below holds the keys k with k < hi.
func Below[K any](hi K) KeyRange[K] { return KeyRange[K]{keyBounds[K]{hi: hi, hasHi: true}} }

// Prefix holds the keys that start with p, for keys of a string kind
// (ordered bytewise): the keys from p up to, not including, the first string
// above every string that starts with p. Prefix("") holds every key.
func Prefix[K ~string](p K) KeyRange[K] {
	r := AtLeast(p)
	if hi, ok := prefixEnd(string(p)); ok {
		r.b.hi, r.b.hasHi = K(hi), true
	}
	return r
}

// prefixEnd returns the least string above every string that starts with
// p: p without its trailing 0xff bytes, its last byte incremented. None
// exists if p is only 0xff bytes, or empty.
func prefixEnd(p string) (string, bool) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			b := []byte(p[:i+1])
			b[i]++
			return string(b), true
		}
	}
	return "", false
}

// bounds lets a watch read a KeyRange of any key type.
func (r KeyRange[K]) bounds() (lo, hi any, hasLo, hasHi bool) {
	return r.b.lo, r.b.hi, r.b.hasLo, r.b.hasHi
}

type anyKeyRange interface {
	bounds() (lo, hi any, hasLo, hasHi bool)
}

// Range iterates in ascending key order over the entries whose keys lie
// in kr, over one version, the same entries on every replica at that
// version: the state when Range was called or, if writes applied since the
// last read of this map, the state when the loop begins (see All). It
// copies nothing: it
// walks the immutable tree of that state, costing O(log n) to find the
// first key and O(1) per entry after, with a constant number of
// allocations. Stop early by breaking out of the loop.
func (r mapReads[K, V]) Range(kr KeyRange[K]) iter.Seq2[K, V] {
	held := r.m.peek()
	return func(yield func(K, V) bool) {
		st := r.m.held(held)
		if !kr.b.empty(st.cmp) {
			btreeAscend(st.cmp, st.root, kr.b, yield)
		}
	}
}

// Backward iterates as Range does, in descending key order.
// Backward(KeyRange[K]{}) yields every entry, from the last key down.
func (r mapReads[K, V]) Backward(kr KeyRange[K]) iter.Seq2[K, V] {
	held := r.m.peek()
	return func(yield func(K, V) bool) {
		st := r.m.held(held)
		if !kr.b.empty(st.cmp) {
			btreeDescend(st.cmp, st.root, kr.b, yield)
		}
	}
}

// WatchRange limits a Map watch to the keys in kr: a Changed event holds
// only the changes of its command to keys in kr, and a command that changed
// no such key yields no event (versions still are the commands'; they jump
// more often). A Clear changes every key and is always delivered. With
// WithInitial, the Initial events hold only the entries in kr. The watcher
// filters for itself: other watchers and the writes pay nothing for it.
//
// kr's bounds must be of the Map's key type, or convert to it without loss
// (Between(1, 10) is a KeyRange[int], and fits an int64 or a uint8 key);
// otherwise, and on a Vec or Set, the watch yields ErrKeyRange.
func WatchRange[K any](kr KeyRange[K]) WatchOption {
	return func(o *watchOptions) { o.keys = kr }
}

// watchKeys is Watch: with a WatchRange it filters the changes it passes
// on; without one it is the plain watch, at the same cost.
func (r mapReads[K, V]) watchKeys(ctx context.Context, opts []WatchOption) iter.Seq2[Event[MapChange[K, V]], error] {
	var o watchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.keys == nil {
		return watch(ctx, r.g.Done(), r.m.hist, r.m.version, r.m.state, opts)
	}
	kr, err := keyRangeOf[K](o.keys)
	if err != nil {
		return func(yield func(Event[MapChange[K, V]], error) bool) { yield(Event[MapChange[K, V]]{}, err) }
	}
	cmp := r.m.cmp
	initial := func() (Version, iter.Seq[MapChange[K, V]]) {
		st := r.m.load()
		return st.v, func(yield func(MapChange[K, V]) bool) {
			if kr.b.empty(cmp) {
				return
			}
			btreeAscend(cmp, st.m.root, kr.b, func(k K, v V) bool {
				// The version, as an unfiltered watch's Initial events
				// carry it: one more search per entry, once per watch.
				_, ver, _ := st.m.GetVersioned(k)
				return yield(MapChange[K, V]{Op: OpInsert, Key: k, Value: v, Version: ver})
			})
		}
	}
	opts = append(opts[:len(opts):len(opts)], func(o *watchOptions) { o.keys = nil })
	all := watch(ctx, r.g.Done(), r.m.hist, r.m.version, initial, opts)
	return func(yield func(Event[MapChange[K, V]], error) bool) {
		for ev, err := range all {
			if err == nil && ev.Kind == Changed {
				// ev.Changes is this watcher's own copy: filter it in place.
				keep := ev.Changes[:0]
				for _, c := range ev.Changes {
					if c.Op == OpClear || kr.b.contains(cmp, c.Key) {
						keep = append(keep, c)
					}
				}
				if len(keep) == 0 {
					continue
				}
				clear(ev.Changes[len(keep):])
				ev.Changes = keep
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// keyRangeOf returns the range a WatchRange option holds as a range of K.
func keyRangeOf[K any](x any) (KeyRange[K], error) {
	if kr, ok := x.(KeyRange[K]); ok {
		return kr, nil
	}
	a, ok := x.(anyKeyRange)
	if !ok {
		return KeyRange[K]{}, ErrKeyRange
	}
	lo, hi, hasLo, hasHi := a.bounds()
	var kr KeyRange[K]
	kr.b.hasLo, kr.b.hasHi = hasLo, hasHi
	if hasLo {
		if kr.b.lo, ok = convertKey[K](lo); !ok {
			return kr, fmt.Errorf("%w: a bound of type %T on keys of type %s", ErrKeyRange, lo, typeName[K]())
		}
	}
	if hasHi {
		if kr.b.hi, ok = convertKey[K](hi); !ok {
			return kr, fmt.Errorf("%w: a bound of type %T on keys of type %s", ErrKeyRange, hi, typeName[K]())
		}
	}
	return kr, nil
}

// convertKey converts x to K if both are strings, numbers or bools and the
// conversion loses nothing (it converts back to x).
func convertKey[K any](x any) (K, bool) {
	var zero K
	v, to := reflect.ValueOf(x), reflect.TypeFor[K]()
	if !v.IsValid() || keyClass(v.Kind()) == 0 || keyClass(v.Kind()) != keyClass(to.Kind()) {
		return zero, false
	}
	c := v.Convert(to)
	if c.Convert(v.Type()).Interface() != x {
		return zero, false
	}
	return c.Interface().(K), true
}

// keyClass groups the kinds that convert into each other by value: 1 for
// strings, 2 for numbers, 3 for bools, 0 for the rest.
func keyClass(k reflect.Kind) int {
	switch k {
	case reflect.String:
		return 1
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return 2
	case reflect.Bool:
		return 3
	}
	return 0
}
