package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// memDB opens a DB on a fresh in-memory filesystem and closes it at the
// end of the test.
func memDB(t testing.TB, opts *Options) (*DB, vfs.FS) {
	t.Helper()
	fs := vfs.NewMem()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.FS = fs
	db, err := Open("/data", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, fs
}

func groupID(b byte) [32]byte {
	var g [32]byte
	for i := range g {
		g[i] = b
	}
	return g
}

func stores(t testing.TB, p Provider, g [32]byte) Stores {
	t.Helper()
	s, err := p.Stores(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.Release != nil {
			s.Release()
		}
	})
	return s
}

func mkLog(i uint64) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       1 + i/10,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "entry %d", i),
		Extensions: fmt.Appendf(nil, "ext %d", i%3),
		AppendedAt: time.Unix(1700000000, int64(i)),
	}
}

func mkLogs(from, to uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, mkLog(i))
	}
	return out
}

func equalLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func mustLog(t testing.TB, s raft.LogStore, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if !equalLog(&got, want) {
		t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, *want)
	}
}

func mustIndexes(t testing.TB, s raft.LogStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", f, l, first, last)
	}
}

// patternReader yields n deterministic pseudo-random bytes (incompressible,
// so Pebble's compression does not hide the size), in pieces of at most
// piece bytes per Read, and hashes what it yields.
type patternReader struct {
	rng   *rand.ChaCha8
	left  int64
	piece int
	sum   hashWriter
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func newPattern(seed byte, n int64, piece int) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), left: n, piece: piece, sum: sha256.New()}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.piece)
	if int64(n) > p.left {
		n = int(p.left)
	}
	_, _ = p.rng.Read(b[:n])
	p.sum.Write(b[:n])
	p.left -= int64(n)
	return n, nil
}

func isCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }
