package collections

import (
	"bytes"
	"cmp"
	"reflect"
	"strings"
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
		return strCmp[K]{}
	case reflect.Int:
		return nativeCmp[K, int]{}
	case reflect.Int8:
		return nativeCmp[K, int8]{}
	case reflect.Int16:
		return nativeCmp[K, int16]{}
	case reflect.Int32:
		return nativeCmp[K, int32]{}
	case reflect.Int64:
		return nativeCmp[K, int64]{}
	case reflect.Uint:
		return nativeCmp[K, uint]{}
	case reflect.Uint8:
		return nativeCmp[K, uint8]{}
	case reflect.Uint16:
		return nativeCmp[K, uint16]{}
	case reflect.Uint32:
		return nativeCmp[K, uint32]{}
	case reflect.Uint64, reflect.Uintptr:
		return nativeCmp[K, uint64]{}
	case reflect.Float32:
		return nativeCmp[K, float32]{}
	case reflect.Float64:
		return nativeCmp[K, float64]{}
	case reflect.Bool:
		return cmpFunc[K](func(a, b K) int { return cmpBool(as[K, bool](a), as[K, bool](b)) })
	default:
		return cmpFunc[K](func(a, b K) int { return bytes.Compare(mustEncode(a), mustEncode(b)) })
	}
}

// nativeCmp compares keys whose kind is B's, as B: a method on a concrete
// type, so the tree's comparisons cost no closure call.
type nativeCmp[K any, B cmp.Ordered] struct{}

func (nativeCmp[K, B]) Compare(a, b K) int { return cmp.Compare(as[K, B](a), as[K, B](b)) }

// strCmp compares keys of string kind with one comparison (cmp.Compare
// makes two when the first is not smaller).
type strCmp[K any] struct{}

func (strCmp[K]) Compare(a, b K) int { return strings.Compare(as[K, string](a), as[K, string](b)) }

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
