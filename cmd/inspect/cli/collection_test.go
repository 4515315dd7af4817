package cli

import (
	"reflect"
	"testing"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/rsm"
)

// Changes decode with what each kind's change carries: a value for inserts
// and sets, the element for a set's removes, and no zero value elsewhere.
func TestDecodeChange(t *testing.T) {
	three := 3
	for _, tc := range []struct {
		kind string
		in   any
		want change
	}{
		{"map", collections.MapChange[string, int]{Op: collections.OpInsert, Key: "a", Value: 7}, change{Op: "insert", Key: "a", Value: uint64(7)}},
		{"map", collections.MapChange[string, int]{Op: collections.OpRemove, Key: "a"}, change{Op: "remove", Key: "a"}},
		{"map", collections.MapChange[string, int]{Op: collections.OpClear}, change{Op: "clear"}},
		{"vec", collections.VecChange[string]{Op: collections.OpSet, Index: 3, Value: "x"}, change{Op: "set", Index: &three, Value: "x"}},
		{"vec", collections.VecChange[string]{Op: collections.OpRemove, Index: 3}, change{Op: "remove", Index: &three}},
		{"set", collections.SetChange[string]{Op: collections.OpInsert, Value: "x"}, change{Op: "insert", Value: "x"}},
		{"set", collections.SetChange[string]{Op: collections.OpRemove, Value: "x"}, change{Op: "remove", Value: "x"}},
		{"set", collections.SetChange[string]{Op: collections.OpClear}, change{Op: "clear"}},
	} {
		raw, err := rsm.Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeChange(tc.kind, raw)
		if err != nil {
			t.Fatalf("%s %+v: %v", tc.kind, tc.in, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %+v: decoded %+v, want %+v", tc.kind, tc.in, got, tc.want)
		}
	}
}
