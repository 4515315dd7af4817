package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/rsm"
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

// A backup file may be anything by the time snapshot verify reads it:
// whatever its bytes, readBackup never panics, reads no record over its
// bounds, and accepts only what carries a matching checksum.
func FuzzReadBackup(f *testing.F) {
	valid := func(h backupHeader, recs ...[]byte) []byte {
		var buf bytes.Buffer
		bw := &backupWriter{w: bufio.NewWriter(&buf), sum: sha256.New()}
		hb, err := rsm.Marshal(h)
		if err != nil {
			f.Fatal(err)
		}
		if err := bw.write(backupMagic[:]); err != nil {
			f.Fatal(err)
		}
		if err := bw.record(hb); err != nil {
			f.Fatal(err)
		}
		for _, r := range recs {
			if err := bw.record(r); err != nil {
				f.Fatal(err)
			}
		}
		if err := bw.write([]byte{0, 0, 0, 0}); err != nil {
			f.Fatal(err)
		}
		if _, err := bw.w.Write(bw.sum.Sum(nil)); err != nil {
			f.Fatal(err)
		}
		if err := bw.w.Flush(); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	good := valid(backupHeader{Format: backupFormat, Kind: "map", Name: "m", Entries: 2}, []byte{0xa0}, []byte{0x80})
	if _, _, err := readBackup(bytes.NewReader(good)); err != nil {
		f.Fatalf("a valid backup: %v", err)
	}
	f.Add(good)
	f.Add(valid(backupHeader{Format: backupFormat}))
	f.Add(valid(backupHeader{Format: backupFormatV1, Entries: 1}, []byte{0xa0}))
	f.Add(append(backupMagic[:], 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, sum, err := readBackup(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, errBadBackup) {
				t.Fatalf("an error not marked errBadBackup: %v", err)
			}
			return
		}
		if (h.Format != backupFormat && h.Format != backupFormatV1) || len(b) < sha256.Size {
			t.Fatalf("accepted %x: header %+v", b, h)
		}
		want := sha256.Sum256(b[:len(b)-sha256.Size])
		if !bytes.Equal(sum, want[:]) || !bytes.Equal(b[len(b)-sha256.Size:], want[:]) {
			t.Fatalf("accepted %x with checksum %x, want %x", b, sum, want)
		}
	})
}
