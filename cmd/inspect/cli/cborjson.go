package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

var genericDec, _ = cbor.DecOptions{
	MaxNestedLevels:  256,
	MaxArrayElements: 1 << 24,
	MaxMapPairs:      1 << 24,
}.DecMode()

// decodeCBOR decodes data without knowing its Go type, into values that
// encoding/json writes: maps with string keys, byte strings as "0x…" hex,
// tags as {"tag": n, "value": v}.
func decodeCBOR(data []byte) (any, error) {
	var v any
	if err := genericDec.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return jsonable(v), nil
}

// jsonable turns a generically decoded CBOR value into one encoding/json
// accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[mapKey(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []byte:
		return "0x" + hex.EncodeToString(x)
	case cbor.Tag:
		return map[string]any{"tag": x.Number, "value": jsonable(x.Content)}
	case big.Int:
		return x.String()
	case *big.Int:
		return x.String()
	case float32:
		return jsonFloat(float64(x))
	case float64:
		return jsonFloat(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case cbor.SimpleValue:
		return fmt.Sprintf("simple(%d)", x)
	}
	return v
}

func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

// mapKey writes a map key as a string: strings as they are, anything else
// as its JSON.
func mapKey(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	b, err := json.Marshal(jsonable(k))
	if err != nil {
		return fmt.Sprint(k)
	}
	return string(b)
}
