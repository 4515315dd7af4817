package collections

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/rsm"
)

// A collection snapshot is a header, then one record per entry or element,
// in iteration order. The header is a field, and a record is its fields (a
// key and a value, or an element): a field is a uvarint length followed by
// CBOR. The
// lengths let a restore decode strings and byte slices, the common keys and
// values, without reflection, and any other type with one Unmarshal.
const snapshotMagic = "mosaik.collection.v2"

// maxSnapshotField bounds a field's length, so a corrupt length cannot make
// a restore allocate without limit. Apply does not check MaxKeySize or
// MaxValueSize (only the handles do), but no key, value or element can be
// larger than the command that carried it.
const maxSnapshotField = groups.MaxCommandSize

type snapshotHeader struct {
	_       struct{} `cbor:",toarray"`
	Magic   string
	Version Version
	Count   int
}

// snapshotFunc adapts a persist function to rsm.Snapshot; the state it
// writes is immutable, so there is nothing to release.
type snapshotFunc func(w io.Writer) error

func (f snapshotFunc) Persist(w io.Writer) error { return f(w) }
func (f snapshotFunc) Release()                  {}

// snapshotWriter writes records; records counts them.
type snapshotWriter struct {
	bw      *bufio.Writer
	length  [binary.MaxVarintLen64]byte
	cbor    [9]byte // the longest head of a string
	records int
}

// writeSnapshot writes the header and then has records write count records.
func writeSnapshot(w io.Writer, v Version, count int, records func(*snapshotWriter) error) error {
	return writeSnapshotAs(w, snapshotMagic, v, count, records)
}

// writeSnapshotAs is writeSnapshot for a format with its own magic.
func writeSnapshotAs(w io.Writer, magic string, v Version, count int, records func(*snapshotWriter) error) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := writeSection(bw, magic, v, count, records); err != nil {
		return err
	}
	return bw.Flush()
}

// writeSection writes a snapshot's header and records to bw, unflushed,
// so that a snapshot can hold others (a space's maps) in its buffer.
func writeSection(bw *bufio.Writer, magic string, v Version, count int, records func(*snapshotWriter) error) error {
	sw := &snapshotWriter{bw: bw}
	if err := writeField(sw, snapshotHeader{Magic: magic, Version: v, Count: count}); err != nil {
		return err
	}
	if err := records(sw); err != nil {
		return err
	}
	if sw.records != count {
		return fmt.Errorf("collections: snapshot wrote %d records, header says %d", sw.records, count)
	}
	return nil
}

// writeField writes one field of the current record. A string or byte
// slice goes from x to the writer without an encoded copy.
func writeField[T any](sw *snapshotWriter, x T) error {
	switch p := any(&x).(type) { // a pointer: x does not escape
	case *string:
		return sw.field(appendCBORString(sw.cbor[:0], 3, len(*p)), nil, *p)
	case *[]byte:
		if *p == nil {
			return sw.field(append(sw.cbor[:0], 0xf6), nil, "") // null, as CBOR encodes a nil slice
		}
		return sw.field(appendCBORString(sw.cbor[:0], 2, len(*p)), *p, "")
	}
	e, err := rsm.Marshal(x)
	if err != nil {
		return err
	}
	return sw.field(e, nil, "")
}

// field writes a field whose CBOR is head, then body and text.
func (sw *snapshotWriter) field(head, body []byte, text string) error {
	n := len(head) + len(body) + len(text)
	if _, err := sw.bw.Write(binary.AppendUvarint(sw.length[:0], uint64(n))); err != nil {
		return err
	}
	if _, err := sw.bw.Write(head); err != nil {
		return err
	}
	if _, err := sw.bw.Write(body); err != nil {
		return err
	}
	_, err := sw.bw.WriteString(text)
	return err
}

// appendCBORString appends the head of a definite-length byte (major 2)
// or text (major 3) string of n bytes, in its shortest form.
func appendCBORString(b []byte, major byte, n int) []byte {
	m := major << 5
	switch u := uint64(n); {
	case u < 24:
		return append(b, m|byte(u))
	case u <= 0xff:
		return append(b, m|24, byte(u))
	case u <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(u))
	case u <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(u))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), u)
	}
}

// snapshotReader reads records.
type snapshotReader struct {
	br  *bufio.Reader
	buf []byte
}

// readSnapshot reads the header and has record read each record, and
// returns the snapshot's version.
func readSnapshot(r io.Reader, record func(*snapshotReader) error) (Version, error) {
	return readSnapshotOf(r, func(h snapshotHeader) func(*snapshotReader) error {
		if h.Magic != snapshotMagic {
			return nil
		}
		return record
	})
}

// readSnapshotOf is readSnapshot for a machine that reads more than one
// format: format returns the record reader for a header, or nil if it
// reads no such snapshot.
func readSnapshotOf(r io.Reader, format func(snapshotHeader) func(*snapshotReader) error) (Version, error) {
	sr := &snapshotReader{br: bufio.NewReaderSize(r, 256<<10)}
	var h snapshotHeader
	if err := readField(sr, &h); err != nil {
		return 0, fmt.Errorf("collections: snapshot header: %w", err)
	}
	record := format(h)
	if record == nil {
		return 0, errors.New("collections: not a collection snapshot of this version")
	}
	if h.Count < 0 {
		return 0, fmt.Errorf("collections: snapshot count %d", h.Count)
	}
	for i := 0; i < h.Count; i++ {
		if err := record(sr); err != nil {
			return 0, fmt.Errorf("collections: snapshot record %d of %d: %w", i, h.Count, err)
		}
	}
	return h.Version, nil
}

// readField reads one field of the current record into x.
func readField[T any](sr *snapshotReader, x *T) error {
	n, err := binary.ReadUvarint(sr.br)
	if err != nil {
		return noEOF(err)
	}
	if n > maxSnapshotField {
		return fmt.Errorf("field of %d bytes, limit %d", n, maxSnapshotField)
	}
	b, err := sr.read(int(n))
	if err != nil {
		return err
	}
	switch p := any(x).(type) {
	case *string:
		if s, ok := cborString(b, 3); ok && utf8.Valid(s) {
			*p = string(s)
			return nil
		}
	case *[]byte:
		if len(b) == 1 && b[0] == 0xf6 {
			*p = nil
			return nil
		}
		if s, ok := cborString(b, 2); ok {
			*p = append(make([]byte, 0, len(s)), s...)
			return nil
		}
	}
	// Any other type, or a form the fast paths do not take. Decoding into
	// a new value keeps x from escaping, so a caller's x stays on its stack.
	y := new(T)
	if err := rsm.DecMode().Unmarshal(b, y); err != nil {
		return err
	}
	*x = *y
	return nil
}

// snapshotReadStep is the most a restore allocates ahead of the bytes it
// has read: a field's buffer grows as its bytes arrive, so a corrupt length
// costs no more memory than the bytes that are there.
const snapshotReadStep = 64 << 10

// read reads the next n bytes into the reader's buffer.
func (sr *snapshotReader) read(n int) ([]byte, error) {
	b := sr.buf[:0]
	for len(b) < n {
		step := min(n-len(b), snapshotReadStep)
		b = slices.Grow(b, step)
		k, err := io.ReadFull(sr.br, b[len(b):len(b)+step])
		b = b[:len(b)+k]
		if err != nil {
			sr.buf = b
			return nil, noEOF(err)
		}
	}
	sr.buf = b
	return b, nil
}

// noEOF turns an end of input inside a record into an error.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// cborString returns the content of b if b is exactly one definite-length
// string of the major type.
func cborString(b []byte, major byte) ([]byte, bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return nil, false
	}
	var n uint64
	head := 1
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(b) >= 2:
		n, head = uint64(b[1]), 2
	case ai == 25 && len(b) >= 3:
		n, head = uint64(binary.BigEndian.Uint16(b[1:])), 3
	case ai == 26 && len(b) >= 5:
		n, head = uint64(binary.BigEndian.Uint32(b[1:])), 5
	case ai == 27 && len(b) >= 9:
		n, head = binary.BigEndian.Uint64(b[1:]), 9
	default:
		return nil, false
	}
	if uint64(len(b)-head) != n {
		return nil, false
	}
	return b[head:], true
}
