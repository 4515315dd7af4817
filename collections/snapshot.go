package collections

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/mosaik-go/mosaik/rsm"
)

// A collection snapshot is a CBOR stream: a header, then one item per
// entry or element, in iteration order.
const snapshotMagic = "mosaik.collection.v1"

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

func writeSnapshot(w io.Writer, v Version, count int, items func(yield func(any) bool)) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := rsm.EncMode().NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Magic: snapshotMagic, Version: v, Count: count}); err != nil {
		return err
	}
	var err error
	n := 0
	items(func(item any) bool {
		n++
		err = enc.Encode(item)
		return err == nil
	})
	if err != nil {
		return err
	}
	if n != count {
		return fmt.Errorf("collections: snapshot wrote %d items, header says %d", n, count)
	}
	return bw.Flush()
}

type decoder interface{ Decode(v any) error }

// readSnapshot reads the header and hands every item to item, and returns
// the snapshot's version.
func readSnapshot(r io.Reader, item func(decoder) error) (Version, error) {
	dec := rsm.DecMode().NewDecoder(bufio.NewReaderSize(r, 256<<10))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return 0, fmt.Errorf("collections: snapshot header: %w", err)
	}
	if h.Magic != snapshotMagic {
		return 0, errors.New("collections: not a collection snapshot")
	}
	if h.Count < 0 {
		return 0, fmt.Errorf("collections: snapshot count %d", h.Count)
	}
	for i := 0; i < h.Count; i++ {
		if err := item(dec); err != nil {
			return 0, fmt.Errorf("collections: snapshot item %d of %d: %w", i, h.Count, err)
		}
	}
	return h.Version, nil
}
