package replica

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/rsm"
)

// Snapshot format: magic, header length, CBOR header (the adapter's state),
// then the machine's own snapshot.
// Version 2 adds Forgotten; version 1 snapshots still restore.
var (
	snapMagic   = [4]byte{'M', 'R', 'S', '2'}
	snapMagicV1 = [4]byte{'M', 'R', 'S', '1'}
)

type snapHeader struct {
	_         struct{} `cbor:",toarray"`
	Cluster   ClusterID
	Last      rsm.Cursor
	RaftIdx   uint64
	LastGC    rsm.Index
	Sessions  map[SessionID]*session
	Forgotten rsm.Index
}

type snapHeaderV1 struct {
	_        struct{} `cbor:",toarray"`
	Cluster  ClusterID
	Last     rsm.Cursor
	RaftIdx  uint64
	LastGC   rsm.Index
	Sessions map[SessionID]*session
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	snapper := f.m.snapshotter()
	if snapper == nil {
		return nil, ErrNoSnapshots
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ms, err := snapper.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot: %w", err)
	}
	h := snapHeader{Cluster: f.cluster, Last: f.last, RaftIdx: f.raftIdx, LastGC: f.sessions.lastGC, Forgotten: f.sessions.forgotten, Sessions: make(map[SessionID]*session, len(f.sessions.byID))}
	for id, s := range f.sessions.byID {
		c := *s
		c.Recent = append([]recentOutcome(nil), s.Recent...)
		h.Sessions[id] = &c
	}
	hb, err := rsm.Marshal(h)
	if err != nil {
		ms.Release()
		return nil, fmt.Errorf("replica: snapshot header: %w", err)
	}
	return &fsmSnapshot{header: hb, ms: ms}, nil
}

type fsmSnapshot struct {
	header []byte
	ms     rsm.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 256<<10)
	var pre [8]byte
	copy(pre[:4], snapMagic[:])
	binary.BigEndian.PutUint32(pre[4:], uint32(len(s.header)))
	_, err := w.Write(pre[:])
	if err == nil {
		_, err = w.Write(s.header)
	}
	if err == nil {
		err = s.ms.Persist(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("replica: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.ms.Release() }

// maxSnapHeader bounds the adapter's part of a snapshot: MaxSessions
// sessions, each with its window of outcomes.
const maxSnapHeader = 256 << 20

// readFull reads n bytes, growing its buffer as they arrive rather than
// trusting n up front: a short input costs what it holds, not what it
// claims.
func readFull(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	b := make([]byte, 0, min(n, step))
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), max(cap(b), step)))
		}
		k, err := io.ReadFull(r, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	snapper := f.m.snapshotter()
	if snapper == nil {
		return ErrNoSnapshots
	}
	r := bufio.NewReaderSize(rc, 256<<10)
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return fmt.Errorf("replica: restore: read header: %w", err)
	}
	v1 := [4]byte(pre[:4]) == snapMagicV1
	if [4]byte(pre[:4]) != snapMagic && !v1 {
		return errors.New("replica: restore: not a mosaik snapshot")
	}
	n := binary.BigEndian.Uint32(pre[4:])
	if n > maxSnapHeader {
		return fmt.Errorf("replica: restore: header of %d bytes is implausible", n)
	}
	hb, err := readFull(r, int(n))
	if err != nil {
		return fmt.Errorf("replica: restore: read header: %w", err)
	}
	var h snapHeader
	if v1 {
		var old snapHeaderV1
		err = rsm.Unmarshal(hb, &old)
		h = snapHeader{Cluster: old.Cluster, Last: old.Last, RaftIdx: old.RaftIdx, LastGC: old.LastGC, Sessions: old.Sessions}
	} else {
		err = rsm.Unmarshal(hb, &h)
	}
	if err != nil {
		return fmt.Errorf("replica: restore: decode header: %w", err)
	}
	for id, s := range h.Sessions {
		if s == nil || len(s.Recent) > SessionWindow {
			return fmt.Errorf("replica: restore: session %x is malformed", id[:4])
		}
	}
	f.mu.Lock()
	err = snapper.Restore(r)
	if err == nil {
		f.cluster, f.last, f.raftIdx = h.Cluster, h.Last, h.RaftIdx
		f.sessions = sessions{byID: h.Sessions, lastGC: h.LastGC, forgotten: h.Forgotten}
		if f.sessions.byID == nil {
			f.sessions.byID = map[SessionID]*session{}
		}
		f.sessions.trim() // a snapshot from before the bound; alike everywhere
		f.publish()
	}
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if f.notify != nil {
		f.notify()
	}
	return nil
}
