package storage

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// memSnapshots is an in-memory raft.SnapshotStore holding the latest
// snapshot. Unlike raft.InmemSnapshotStore it publishes a snapshot only when
// its sink closes, so a snapshot being written is never sent to a follower
// half done.
type memSnapshots struct {
	mu     sync.Mutex
	latest *memSnap
}

type memSnap struct {
	meta   raft.SnapshotMeta
	chunks [][]byte
}

// memChunk is the size of the pieces a snapshot is kept in: one growing
// buffer would copy a large snapshot each time it doubles.
const memChunk = 1 << 20

func (m *memSnap) reader() io.Reader {
	rs := make([]io.Reader, len(m.chunks))
	for i, c := range m.chunks {
		rs[i] = bytes.NewReader(c)
	}
	return io.MultiReader(rs...)
}

func (s *memSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	meta := raft.SnapshotMeta{
		Version:            version,
		ID:                 fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli()),
		Index:              index,
		Term:               term,
		Configuration:      configuration,
		ConfigurationIndex: configurationIndex,
	}
	return &memSink{store: s, meta: meta}, nil
}

func (s *memSnapshots) List() ([]*raft.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		return nil, nil
	}
	meta := s.latest.meta
	return []*raft.SnapshotMeta{&meta}, nil
}

func (s *memSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	latest := s.latest
	s.mu.Unlock()
	if latest == nil || latest.meta.ID != id {
		return nil, nil, fmt.Errorf("storage: no snapshot %q", id)
	}
	meta := latest.meta
	return &meta, io.NopCloser(latest.reader()), nil
}

type memSink struct {
	store  *memSnapshots
	meta   raft.SnapshotMeta
	chunks [][]byte
	size   int64
	done   bool
}

func (k *memSink) ID() string { return k.meta.ID }

func (k *memSink) Write(p []byte) (int, error) {
	if k.done {
		return 0, fmt.Errorf("storage: snapshot %s already closed", k.meta.ID)
	}
	n := len(p)
	for len(p) > 0 {
		last := len(k.chunks) - 1
		if last < 0 || len(k.chunks[last]) == memChunk {
			k.chunks = append(k.chunks, make([]byte, 0, memChunk))
			last++
		}
		c := k.chunks[last]
		m := min(len(p), memChunk-len(c))
		k.chunks[last] = append(c, p[:m]...)
		p = p[m:]
	}
	k.size += int64(n)
	return n, nil
}

func (k *memSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	k.meta.Size = k.size
	snap := &memSnap{meta: k.meta, chunks: k.chunks}
	k.store.mu.Lock()
	k.store.latest = snap
	k.store.mu.Unlock()
	return nil
}

func (k *memSink) Cancel() error {
	k.done = true
	k.chunks = nil
	return nil
}
