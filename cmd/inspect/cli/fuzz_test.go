package cli

import (
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// What inspect decodes without knowing its type comes from the network (a
// node's dump pages and changes) or from a data directory: whatever the
// bytes, decoding never panics, and what decodes can be written as JSON.
func FuzzDecodeCBOR(f *testing.F) {
	for _, v := range []any{
		map[string]any{"k": []byte{1, 2}, "v": 1.5},
		[]any{uint64(1), int64(-1), "s", nil, true},
		cbor.Tag{Number: 1, Content: int64(1700000000)},
		map[any]any{uint64(1): []any{map[any]any{"x": 2.0}}},
	} {
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}) // NaN
	f.Add([]byte{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCBOR(b)
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded %x, but JSON refuses it: %v", b, err)
		}
	})
}
