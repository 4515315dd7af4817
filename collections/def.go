package collections

import "github.com/mosaik-go/mosaik/transport"

// MapDefinition names a Map and its types once, so a library can own a
// collection and hand out writers and readers:
//
//	var Prices = collections.MapDef[string, float64]("prices")
//	w, err := Prices.Writer(net)
type MapDefinition[K comparable, V any] struct {
	name string
	opts []Option
}

// MapDef defines the map called name. opts apply to every handle opened
// from the definition, before the handle's own.
func MapDef[K comparable, V any](name string, opts ...Option) MapDefinition[K, V] {
	return MapDefinition[K, V]{name: name, opts: opts}
}

// Name returns the map's name.
func (d MapDefinition[K, V]) Name() string { return d.name }

// Writer opens the map for writing.
func (d MapDefinition[K, V]) Writer(net *transport.Network, opts ...Option) (*MapWriter[K, V], error) {
	return NewMapWriter[K, V](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the map for reading.
func (d MapDefinition[K, V]) Reader(net *transport.Network, opts ...Option) (*MapReader[K, V], error) {
	return NewMapReader[K, V](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers, for a library
// to export while keeping the writer to itself.
func (d MapDefinition[K, V]) ReaderOnly() MapReaderDefinition[K, V] {
	return MapReaderDefinition[K, V]{d}
}

// MapReaderDefinition opens readers of a map; see MapDefinition.ReaderOnly.
type MapReaderDefinition[K comparable, V any] struct{ d MapDefinition[K, V] }

// Name returns the map's name.
func (d MapReaderDefinition[K, V]) Name() string { return d.d.name }

// Reader opens the map for reading.
func (d MapReaderDefinition[K, V]) Reader(net *transport.Network, opts ...Option) (*MapReader[K, V], error) {
	return d.d.Reader(net, opts...)
}

// VecDefinition names a Vec and its element type; see MapDefinition.
type VecDefinition[T any] struct {
	name string
	opts []Option
}

// VecDef defines the vector called name.
func VecDef[T any](name string, opts ...Option) VecDefinition[T] {
	return VecDefinition[T]{name: name, opts: opts}
}

// Name returns the vector's name.
func (d VecDefinition[T]) Name() string { return d.name }

// Writer opens the vector for writing.
func (d VecDefinition[T]) Writer(net *transport.Network, opts ...Option) (*VecWriter[T], error) {
	return NewVecWriter[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the vector for reading.
func (d VecDefinition[T]) Reader(net *transport.Network, opts ...Option) (*VecReader[T], error) {
	return NewVecReader[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers.
func (d VecDefinition[T]) ReaderOnly() VecReaderDefinition[T] { return VecReaderDefinition[T]{d} }

// VecReaderDefinition opens readers of a vector.
type VecReaderDefinition[T any] struct{ d VecDefinition[T] }

// Name returns the vector's name.
func (d VecReaderDefinition[T]) Name() string { return d.d.name }

// Reader opens the vector for reading.
func (d VecReaderDefinition[T]) Reader(net *transport.Network, opts ...Option) (*VecReader[T], error) {
	return d.d.Reader(net, opts...)
}

// SetDefinition names a Set and its element type; see MapDefinition.
type SetDefinition[T comparable] struct {
	name string
	opts []Option
}

// SetDef defines the set called name.
func SetDef[T comparable](name string, opts ...Option) SetDefinition[T] {
	return SetDefinition[T]{name: name, opts: opts}
}

// Name returns the set's name.
func (d SetDefinition[T]) Name() string { return d.name }

// Writer opens the set for writing.
func (d SetDefinition[T]) Writer(net *transport.Network, opts ...Option) (*SetWriter[T], error) {
	return NewSetWriter[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the set for reading.
func (d SetDefinition[T]) Reader(net *transport.Network, opts ...Option) (*SetReader[T], error) {
	return NewSetReader[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers.
func (d SetDefinition[T]) ReaderOnly() SetReaderDefinition[T] { return SetReaderDefinition[T]{d} }

// SetReaderDefinition opens readers of a set.
type SetReaderDefinition[T comparable] struct{ d SetDefinition[T] }

// Name returns the set's name.
func (d SetReaderDefinition[T]) Name() string { return d.d.name }

// Reader opens the set for reading.
func (d SetReaderDefinition[T]) Reader(net *transport.Network, opts ...Option) (*SetReader[T], error) {
	return d.d.Reader(net, opts...)
}

// CellDefinition names a Cell and its value type; see MapDefinition.
type CellDefinition[T any] struct {
	name string
	opts []Option
}

// CellDef defines the cell called name.
func CellDef[T any](name string, opts ...Option) CellDefinition[T] {
	return CellDefinition[T]{name: name, opts: opts}
}

// Name returns the cell's name.
func (d CellDefinition[T]) Name() string { return d.name }

// Writer opens the cell for writing.
func (d CellDefinition[T]) Writer(net *transport.Network, opts ...Option) (*CellWriter[T], error) {
	return NewCellWriter[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the cell for reading.
func (d CellDefinition[T]) Reader(net *transport.Network, opts ...Option) (*CellReader[T], error) {
	return NewCellReader[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers.
func (d CellDefinition[T]) ReaderOnly() CellReaderDefinition[T] { return CellReaderDefinition[T]{d} }

// CellReaderDefinition opens readers of a cell.
type CellReaderDefinition[T any] struct{ d CellDefinition[T] }

// Name returns the cell's name.
func (d CellReaderDefinition[T]) Name() string { return d.d.name }

// Reader opens the cell for reading.
func (d CellReaderDefinition[T]) Reader(net *transport.Network, opts ...Option) (*CellReader[T], error) {
	return d.d.Reader(net, opts...)
}

// OnceDefinition names a Once and its value type; see MapDefinition.
type OnceDefinition[T any] struct {
	name string
	opts []Option
}

// OnceDef defines the once called name.
func OnceDef[T any](name string, opts ...Option) OnceDefinition[T] {
	return OnceDefinition[T]{name: name, opts: opts}
}

// Name returns the once's name.
func (d OnceDefinition[T]) Name() string { return d.name }

// Writer opens the once for writing.
func (d OnceDefinition[T]) Writer(net *transport.Network, opts ...Option) (*OnceWriter[T], error) {
	return NewOnceWriter[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the once for reading.
func (d OnceDefinition[T]) Reader(net *transport.Network, opts ...Option) (*OnceReader[T], error) {
	return NewOnceReader[T](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers.
func (d OnceDefinition[T]) ReaderOnly() OnceReaderDefinition[T] { return OnceReaderDefinition[T]{d} }

// OnceReaderDefinition opens readers of a once.
type OnceReaderDefinition[T any] struct{ d OnceDefinition[T] }

// Name returns the once's name.
func (d OnceReaderDefinition[T]) Name() string { return d.d.name }

// Reader opens the once for reading.
func (d OnceReaderDefinition[T]) Reader(net *transport.Network, opts ...Option) (*OnceReader[T], error) {
	return d.d.Reader(net, opts...)
}

// PriorityQueueDefinition names a PriorityQueue and its types; see
// MapDefinition. A bounded queue's definition holds its WithCapacity.
type PriorityQueueDefinition[P any, K comparable, V any] struct {
	name string
	opts []Option
}

// PriorityQueueDef defines the priority queue called name.
func PriorityQueueDef[P any, K comparable, V any](name string, opts ...Option) PriorityQueueDefinition[P, K, V] {
	return PriorityQueueDefinition[P, K, V]{name: name, opts: opts}
}

// Name returns the queue's name.
func (d PriorityQueueDefinition[P, K, V]) Name() string { return d.name }

// Writer opens the queue for writing.
func (d PriorityQueueDefinition[P, K, V]) Writer(net *transport.Network, opts ...Option) (*PriorityQueueWriter[P, K, V], error) {
	return NewPriorityQueueWriter[P, K, V](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// Reader opens the queue for reading.
func (d PriorityQueueDefinition[P, K, V]) Reader(net *transport.Network, opts ...Option) (*PriorityQueueReader[P, K, V], error) {
	return NewPriorityQueueReader[P, K, V](net, d.name, append(d.opts[:len(d.opts):len(d.opts)], opts...)...)
}

// ReaderOnly returns a definition that can only open readers.
func (d PriorityQueueDefinition[P, K, V]) ReaderOnly() PriorityQueueReaderDefinition[P, K, V] {
	return PriorityQueueReaderDefinition[P, K, V]{d}
}

// PriorityQueueReaderDefinition opens readers of a priority queue.
type PriorityQueueReaderDefinition[P any, K comparable, V any] struct {
	d PriorityQueueDefinition[P, K, V]
}

// Name returns the queue's name.
func (d PriorityQueueReaderDefinition[P, K, V]) Name() string { return d.d.name }

// Reader opens the queue for reading.
func (d PriorityQueueReaderDefinition[P, K, V]) Reader(net *transport.Network, opts ...Option) (*PriorityQueueReader[P, K, V], error) {
	return d.d.Reader(net, opts...)
}
