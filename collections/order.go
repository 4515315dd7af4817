package collections

import (
	"bytes"
	"cmp"
	"reflect"
	"unsafe"

	"github.com/benbjohnson/immutable"

	"github.com/mosaik-go/mosaik/rsm"
)

// Keys (and Set elements) are kept sorted, so iteration order is the same
// on every replica. Keys of string, integer, float and bool kinds compare
// natively, without allocating; any other comparable type is ordered by its
// CBOR encoding.
func comparerFor[K any]() immutable.Comparer[K] {
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, string](a), as[K, string](b)) })
	case reflect.Int:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, int](a), as[K, int](b)) })
	case reflect.Int8:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, int8](a), as[K, int8](b)) })
	case reflect.Int16:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, int16](a), as[K, int16](b)) })
	case reflect.Int32:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, int32](a), as[K, int32](b)) })
	case reflect.Int64:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, int64](a), as[K, int64](b)) })
	case reflect.Uint:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, uint](a), as[K, uint](b)) })
	case reflect.Uint8:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, uint8](a), as[K, uint8](b)) })
	case reflect.Uint16:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, uint16](a), as[K, uint16](b)) })
	case reflect.Uint32:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, uint32](a), as[K, uint32](b)) })
	case reflect.Uint64, reflect.Uintptr:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, uint64](a), as[K, uint64](b)) })
	case reflect.Float32:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, float32](a), as[K, float32](b)) })
	case reflect.Float64:
		return cmpFunc[K](func(a, b K) int { return cmp.Compare(as[K, float64](a), as[K, float64](b)) })
	case reflect.Bool:
		return cmpFunc[K](func(a, b K) int { return cmpBool(as[K, bool](a), as[K, bool](b)) })
	default:
		return cmpFunc[K](func(a, b K) int { return bytes.Compare(mustEncode(a), mustEncode(b)) })
	}
}

type cmpFunc[K any] func(a, b K) int

func (f cmpFunc[K]) Compare(a, b K) int { return f(a, b) }

// as reinterprets a K whose kind is that of B. comparerFor only calls it
// for matching kinds, so the memory layouts are identical.
func as[K, B any](k K) B { return *(*B)(unsafe.Pointer(&k)) }

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// mustEncode encodes a value already known to encode (it crossed the wire
// or was checked before sending).
func mustEncode(v any) []byte {
	b, err := rsm.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
