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
	meta raft.SnapshotMeta
	data []byte
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
	return &meta, io.NopCloser(bytes.NewReader(latest.data)), nil
}

type memSink struct {
	store *memSnapshots
	meta  raft.SnapshotMeta
	buf   bytes.Buffer
	done  bool
}

func (k *memSink) ID() string { return k.meta.ID }

func (k *memSink) Write(p []byte) (int, error) {
	if k.done {
		return 0, fmt.Errorf("storage: snapshot %s already closed", k.meta.ID)
	}
	return k.buf.Write(p)
}

func (k *memSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	k.meta.Size = int64(k.buf.Len())
	snap := &memSnap{meta: k.meta, data: k.buf.Bytes()}
	k.store.mu.Lock()
	k.store.latest = snap
	k.store.mu.Unlock()
	return nil
}

func (k *memSink) Cancel() error {
	k.done = true
	k.buf = bytes.Buffer{}
	return nil
}
