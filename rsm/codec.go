package rsm

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Commands, queries, results and snapshots headers travel as CBOR. The
// encoding is deterministic (RFC 8949 core), so equal values encode to equal
// bytes on every member; decoding is bounded so a hostile message cannot
// make a member allocate without limit.
//
// Every array and map is at most maxElements long and nested at most
// maxNesting deep: no command (at most MaxCommandSize bytes, one byte or
// more per element) has more.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

// MaxCommandSize is the largest encoded command a group accepts.
const MaxCommandSize = 1 << 20

const (
	maxElements = MaxCommandSize
	maxNesting  = 64
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxArrayElements: maxElements,
		MaxMapPairs:      maxElements,
		MaxNestedLevels:  maxNesting,
		// A Go string holds any bytes and Marshal encodes them as they are:
		// decode them back as they are, or a write of one would be acknowledged
		// and then refused by every replica.
		UTF8: cbor.UTF8DecodeInvalid,
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
