package rsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Equal values encode to equal bytes, whatever the order maps were built in.
func TestMarshalDeterministic(t *testing.T) {
	a := map[string]int{}
	b := map[string]int{}
	for i := range 100 {
		a[strings.Repeat("k", i+1)] = i
		b[strings.Repeat("k", 100-i)] = 99 - i
	}
	ea, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ea, eb) {
		t.Fatal("equal maps encode differently")
	}
}

// A hostile command cannot claim more elements or nesting than a command
// of MaxCommandSize bytes could hold.
func TestUnmarshalBounded(t *testing.T) {
	var v any
	// An array header claiming 2^32 elements, with none following: refused
	// for its claim, before anything is read or allocated.
	var tooMany *cbor.MaxArrayElementsError
	if err := Unmarshal([]byte{0x9b, 0, 0, 0, 1, 0, 0, 0, 0}, &v); !errors.As(err, &tooMany) {
		t.Fatalf("an array claiming 2^32 elements: %v, want a MaxArrayElementsError", err)
	}
	// As many elements as a command of MaxCommandSize bytes can hold decode.
	full := append([]byte{0x9a, 0, 0, 0, 0}, make([]byte, maxElements)...)
	binary.BigEndian.PutUint32(full[1:], maxElements)
	var many []uint8
	if err := Unmarshal(full, &many); err != nil || len(many) != maxElements {
		t.Fatalf("an array of %d elements: %d decoded, %v", maxElements, len(many), err)
	}
	deep := append(bytes.Repeat([]byte{0x81}, maxNesting+1), 0x00)
	if err := Unmarshal(deep, &v); err == nil {
		t.Fatalf("%d nested arrays decoded", maxNesting+1)
	}
	ok := append(bytes.Repeat([]byte{0x81}, maxNesting-1), 0x00)
	if err := Unmarshal(ok, &v); err != nil {
		t.Fatalf("%d nested arrays: %v", maxNesting-1, err)
	}
}

func TestNoOp(t *testing.T) {
	var m StateMachine[struct{}, struct{}, struct{}] = NoOp{}
	m.Apply(struct{}{}, nil)
	if m.Signature() == "" || m.Query(struct{}{}) != struct{}{} {
		t.Fatal("NoOp")
	}
}
