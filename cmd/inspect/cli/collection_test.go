package cli

import (
	"reflect"
	"testing"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
)

// Changes decode with what each kind's change carries: a value for inserts
// and sets, the element for a set's removes, and no zero value elsewhere,
// even where the wire holds one.
func TestDecodeChange(t *testing.T) {
	enc := func(v any) []byte {
		b, err := rsm.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	three := 3
	a, x, seven := enc("a"), enc("x"), enc(7)
	for _, tc := range []struct {
		kind string
		in   inspectwire.Change
		want change
	}{
		{"map", inspectwire.Change{Op: inspectwire.ChangeInsert, Key: a, Value: seven}, change{Op: "insert", Key: "a", Value: uint64(7)}},
		{"map", inspectwire.Change{Op: inspectwire.ChangeRemove, Key: a, Value: seven}, change{Op: "remove", Key: "a"}},
		{"map", inspectwire.Change{Op: inspectwire.ChangeClear, Key: a}, change{Op: "clear"}},
		{"vec", inspectwire.Change{Op: inspectwire.ChangeSet, Index: 3, Value: x}, change{Op: "set", Index: &three, Value: "x"}},
		{"vec", inspectwire.Change{Op: inspectwire.ChangeRemove, Index: 3, Value: x}, change{Op: "remove", Index: &three}},
		{"set", inspectwire.Change{Op: inspectwire.ChangeInsert, Value: x}, change{Op: "insert", Value: "x"}},
		{"set", inspectwire.Change{Op: inspectwire.ChangeRemove, Value: x}, change{Op: "remove", Value: "x"}},
		{"set", inspectwire.Change{Op: inspectwire.ChangeClear, Value: x}, change{Op: "clear"}},
		{"cell", inspectwire.Change{Op: inspectwire.ChangeInsert, Value: seven}, change{Op: "insert", Value: uint64(7)}},
		{"cell", inspectwire.Change{Op: inspectwire.ChangeClear}, change{Op: "clear"}},
		{"once", inspectwire.Change{Op: inspectwire.ChangeInsert, Value: x}, change{Op: "insert", Value: "x"}},
		{"pqueue", inspectwire.Change{Op: inspectwire.ChangeInsert, Key: a, Value: enc([]any{3, "x"})}, change{Op: "insert", Key: "a", Priority: uint64(3), Value: "x"}},
		{"pqueue", inspectwire.Change{Op: inspectwire.ChangeRemove, Key: a}, change{Op: "remove", Key: "a"}},
		{"pqueue", inspectwire.Change{Op: inspectwire.ChangeClear}, change{Op: "clear"}},
	} {
		got, err := decodeChange(tc.kind, tc.in)
		if err != nil {
			t.Fatalf("%s %+v: %v", tc.kind, tc.in, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %+v: decoded %+v, want %+v", tc.kind, tc.in, got, tc.want)
		}
	}
}
