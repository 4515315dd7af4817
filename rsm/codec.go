package rsm

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Commands, queries, results and snapshots headers travel as CBOR. The
// encoding is deterministic (RFC 8949 core), so equal values encode to equal
// bytes on every member; decoding is bounded so a hostile message cannot
// make a member allocate without limit.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxArrayElements: 1 << 24,
		MaxMapPairs:      1 << 24,
		MaxNestedLevels:  64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v as deterministic CBOR.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rsm: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes CBOR into v.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("rsm: decode %T: %w", v, err)
	}
	return nil
}

// EncMode returns the encoder Marshal uses, for streaming encoders.
func EncMode() cbor.EncMode { return encMode }

// DecMode returns the decoder Unmarshal uses, for streaming decoders.
func DecMode() cbor.DecMode { return decMode }
