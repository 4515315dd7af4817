package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// snapStore is a group's raft.SnapshotStore inside the DB.
//
// A snapshot is stored as chunks of Options.SnapshotChunkSize bytes under
// keys numbered in order, each followed by a CRC-32C of its key and data,
// and, once the sink is closed, a metadata record: Raft's metadata, the
// size, the number of chunks and a CRC-32C of the whole stream. Writing
// commits a Pebble batch every MiB or so, so neither writing nor reading
// ever holds more than a chunk and a batch in memory. The metadata is
// written last, with a sync: a snapshot without it never finished, is not
// listed, and its chunks are deleted when the group's stores are next
// handed out. A reader checks every chunk before handing out its bytes and
// the totals at the end; a mismatch is an ErrCorrupt from Read. Only the
// newest Options.RetainSnapshots snapshots are kept.
type snapStore struct{ v *view }

var _ raft.SnapshotStore = (*snapStore)(nil)

const snapMetaFormat = 1

// snapMeta is the metadata record, JSON-encoded behind a CRC (see
// encodeChecked), so tools can read it.
type snapMeta struct {
	Format             int                  `json:"format"`
	ID                 string               `json:"id"`
	Seq                uint64               `json:"seq"`
	Version            raft.SnapshotVersion `json:"version"`
	Index              uint64               `json:"index"`
	Term               uint64               `json:"term"`
	Configuration      raft.Configuration   `json:"configuration"`
	ConfigurationIndex uint64               `json:"configuration_index"`
	Size               int64                `json:"size"`
	Chunks             uint64               `json:"chunks"`
	CRC                uint32               `json:"crc32c"`
	Created            time.Time            `json:"created"`
}

func (m *snapMeta) raft() *raft.SnapshotMeta {
	return &raft.SnapshotMeta{
		Version:            m.Version,
		ID:                 m.ID,
		Index:              m.Index,
		Term:               m.Term,
		Configuration:      m.Configuration,
		ConfigurationIndex: m.ConfigurationIndex,
		Size:               m.Size,
	}
}

func snapshotID(term, index, seq uint64) string { return fmt.Sprintf("%d-%d-%d", term, index, seq) }

func snapshotSeq(id string) (uint64, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	return seq, err == nil
}

// listMetas returns the finished snapshots of the group, newest first. The
// caller has entered.
func (v *view) listMetas() ([]*snapMeta, error) {
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.metaLo, UpperBound: v.metaHi})
	if err != nil {
		return nil, v.db.readErr(err)
	}
	var out []*snapMeta
	for ok := it.First(); ok; ok = it.Next() {
		val, err := it.ValueAndErr()
		if err != nil {
			break
		}
		m, err := v.decodeMeta(it.Key(), val)
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, m)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, v.db.readErr(err)
	}
	slices.SortFunc(out, func(a, b *snapMeta) int {
		if a.Index != b.Index {
			return cmpDesc(a.Index, b.Index)
		}
		if a.Term != b.Term {
			return cmpDesc(a.Term, b.Term)
		}
		return cmpDesc(a.Seq, b.Seq)
	})
	return out, nil
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func (v *view) decodeMeta(key, raw []byte) (*snapMeta, error) {
	seq := uint64(0)
	if len(key) == len(v.metaLo)+8 {
		seq = binary.BigEndian.Uint64(key[len(v.metaLo):])
	} else {
		return nil, v.corrupt("snapshot metadata key %x has the wrong length", key)
	}
	body, err := decodeChecked(key, raw)
	if err != nil {
		return nil, v.corrupt("metadata of snapshot #%d: %v", seq, err)
	}
	var m snapMeta
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, v.corrupt("metadata of snapshot #%d does not decode: %v", seq, err)
	}
	switch {
	case m.Format != snapMetaFormat:
		return nil, v.corrupt("metadata of snapshot #%d has format %d, want %d", seq, m.Format, snapMetaFormat)
	case m.Seq != seq:
		return nil, v.corrupt("metadata of snapshot #%d names snapshot #%d", seq, m.Seq)
	case m.ID != snapshotID(m.Term, m.Index, m.Seq):
		return nil, v.corrupt("metadata of snapshot #%d has id %q", seq, m.ID)
	case m.Size < 0:
		return nil, v.corrupt("snapshot %s has size %d", m.ID, m.Size)
	}
	return &m, nil
}

// Create implements raft.SnapshotStore.
func (s *snapStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	v := s.v
	if version != 1 {
		return nil, fmt.Errorf("storage: snapshot version %d unsupported (want 1)", version)
	}
	if err := v.enter(); err != nil {
		return nil, err
	}
	v.exit()
	v.snapMu.Lock()
	seq := v.nextSeq
	v.nextSeq++
	v.snapMu.Unlock()
	chunk := v.db.opts.SnapshotChunkSize
	return &snapSink{
		v: v,
		meta: snapMeta{
			Format:             snapMetaFormat,
			ID:                 snapshotID(term, index, seq),
			Seq:                seq,
			Version:            version,
			Index:              index,
			Term:               term,
			Configuration:      cloneConfiguration(configuration),
			ConfigurationIndex: configurationIndex,
		},
		buf:    make([]byte, 0, chunk+4),
		target: min(1<<20, int(v.db.opts.MemTableSize/4)),
	}, nil
}

func cloneConfiguration(c raft.Configuration) raft.Configuration {
	return raft.Configuration{Servers: slices.Clone(c.Servers)}
}

// List implements raft.SnapshotStore: the finished snapshots, highest index
// first.
func (s *snapStore) List() (_ []*raft.SnapshotMeta, err error) {
	if err := s.v.enter(); err != nil {
		return nil, err
	}
	defer s.v.exit()
	defer s.v.recoverCorrupt(&err, "list snapshots")
	metas, err := s.v.listMetas()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, len(metas))
	for i, m := range metas {
		out[i] = m.raft()
	}
	return out, nil
}

// Open implements raft.SnapshotStore. The reader checks the data as it
// goes: a chunk whose checksum fails, a missing chunk, or totals that do
// not match the metadata make Read return ErrCorrupt, before any of the
// bad bytes are handed out.
func (s *snapStore) Open(id string) (_ *raft.SnapshotMeta, _ io.ReadCloser, err error) {
	v := s.v
	if err := v.enter(); err != nil {
		return nil, nil, err
	}
	defer v.exit()
	defer recoverCorruptNamed(v, &err, "open snapshot", id)
	seq, ok := snapshotSeq(id)
	if !ok {
		return nil, nil, fmt.Errorf("%w: group %s: id %q is not one this store makes", ErrSnapshotNotFound, v.short, id)
	}
	key := v.metaKey(seq)
	raw, found, err := v.db.get(key)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: group %s: %s", ErrSnapshotNotFound, v.short, id)
	}
	m, err := v.decodeMeta(key, raw)
	if err != nil {
		return nil, nil, err
	}
	if m.ID != id {
		return nil, nil, fmt.Errorf("%w: group %s: %s (snapshot #%d is %s)", ErrSnapshotNotFound, v.short, id, seq, m.ID)
	}
	it, err := v.db.pdb.NewIter(&pebble.IterOptions{LowerBound: v.chunkPrefix(seq), UpperBound: v.chunkPrefix(seq + 1)})
	if err != nil {
		return nil, nil, v.db.readErr(err)
	}
	r := &snapReader{v: v, meta: m, it: it}
	v.db.regMu.Lock()
	v.db.readers[r] = struct{}{}
	v.db.regMu.Unlock()
	return m.raft(), r, nil
}

// snapSink writes one snapshot. Raft uses it from one goroutine.
type snapSink struct {
	v      *view
	meta   snapMeta
	buf    []byte // the chunk being filled; capacity chunk size + 4
	batch  *pebble.Batch
	target int // commit the batch once it holds this much
	key    []byte
	crc    uint32
	done   bool
	err    error
}

var _ raft.SnapshotSink = (*snapSink)(nil)

// ID implements raft.SnapshotSink.
func (s *snapSink) ID() string { return s.meta.ID }

// Write implements io.Writer.
func (s *snapSink) Write(p []byte) (int, error) {
	if s.done {
		return 0, fmt.Errorf("storage: snapshot %s: write after close", s.meta.ID)
	}
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for len(p) > 0 {
		room := cap(s.buf) - 4 - len(s.buf)
		k := min(room, len(p))
		s.buf = append(s.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(s.buf) == cap(s.buf)-4 {
			if err := s.putChunk(); err != nil {
				s.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// putChunk moves the filled buffer into the batch, committing the batch
// first if the chunk would make it too large.
func (s *snapSink) putChunk() error {
	if err := s.v.enter(); err != nil {
		return err
	}
	defer s.v.exit()
	return s.putChunkEntered()
}

func (s *snapSink) putChunkEntered() error {
	data := s.buf
	if s.batch != nil && s.batch.Len()+len(data)+64 > s.target {
		if err := s.flush(pebble.NoSync); err != nil {
			return err
		}
	}
	if s.batch == nil {
		s.batch = s.v.db.pdb.NewBatch()
	}
	s.key = s.v.chunkKey(s.key, s.meta.Seq, s.meta.Chunks)
	sum := crc32.Update(crc32.Checksum(s.key, castagnoli), castagnoli, data)
	s.crc = crc32.Update(s.crc, castagnoli, data)
	s.meta.Size += int64(len(data))
	s.meta.Chunks++
	_ = s.batch.Set(s.key, binary.BigEndian.AppendUint32(data, sum), nil)
	s.buf = s.buf[:0]
	return nil
}

// flush commits the batch, if any. The caller has entered.
func (s *snapSink) flush(wo *pebble.WriteOptions) error {
	if s.batch == nil {
		return nil
	}
	b := s.batch
	s.batch = nil
	defer b.Close()
	if err := s.v.db.commit(b, wo); err != nil {
		return fmt.Errorf("storage: group %s: write snapshot %s: %w", s.v.short, s.meta.ID, err)
	}
	return nil
}

// Close implements raft.SnapshotSink: it stores the last chunk and the
// metadata, syncs, and deletes snapshots beyond the retention count. The
// snapshot is listed once Close returns nil.
func (s *snapSink) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	err := s.err
	if err == nil {
		err = s.finish()
	}
	if err != nil {
		_ = s.discard()
		return err
	}
	if err := s.v.prune(); err != nil {
		s.v.db.log.Warn("storage: delete old snapshots", "group", s.v.short, "err", err)
	}
	return nil
}

func (s *snapSink) finish() error {
	if err := s.v.enter(); err != nil {
		return err
	}
	defer s.v.exit()
	if len(s.buf) > 0 {
		if err := s.putChunkEntered(); err != nil {
			return err
		}
	}
	s.buf = nil
	s.meta.CRC = s.crc
	s.meta.Created = time.Now().UTC()
	body, err := json.Marshal(&s.meta)
	if err != nil {
		return fmt.Errorf("storage: snapshot %s: encode metadata: %w", s.meta.ID, err)
	}
	if s.batch == nil {
		s.batch = s.v.db.pdb.NewBatch()
	}
	key := s.v.metaKey(s.meta.Seq)
	_ = s.batch.Set(key, encodeChecked(key, body), nil)
	return s.flush(s.v.db.wo)
}

// Cancel implements raft.SnapshotSink: it deletes what was written.
func (s *snapSink) Cancel() error {
	if s.done {
		return nil
	}
	s.done = true
	return s.discard()
}

func (s *snapSink) discard() error {
	s.buf = nil
	if s.batch != nil {
		_ = s.batch.Close()
		s.batch = nil
	}
	if err := s.v.enter(); err != nil {
		return err
	}
	defer s.v.exit()
	b := s.v.db.pdb.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(s.v.chunkPrefix(s.meta.Seq), s.v.chunkPrefix(s.meta.Seq+1), nil)
	return s.v.db.commit(b, pebble.NoSync)
}

// prune deletes finished snapshots beyond the retention count.
func (v *view) prune() (err error) {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	defer v.recoverCorrupt(&err, "delete old snapshots")
	metas, err := v.listMetas()
	if err != nil {
		return err
	}
	keep := v.db.opts.RetainSnapshots
	if len(metas) <= keep {
		return nil
	}
	b := v.db.pdb.NewBatch()
	defer b.Close()
	for _, m := range metas[keep:] {
		_ = b.Delete(v.metaKey(m.Seq), nil)
		_ = b.DeleteRange(v.chunkPrefix(m.Seq), v.chunkPrefix(m.Seq+1), nil)
	}
	return v.db.commit(b, pebble.NoSync)
}

// snapReader streams one stored snapshot, checking it as it goes.
type snapReader struct {
	v       *view
	meta    *snapMeta
	it      *pebble.Iterator
	started bool
	chunk   uint64
	size    int64
	crc     uint32
	cur     []byte // unread part of the current chunk; owned by it
	err     error  // sticky: io.EOF, ErrCorrupt, ErrClosed
}

// Read implements io.Reader.
func (r *snapReader) Read(p []byte) (_ int, err error) {
	if err := r.v.db.enter(); err != nil {
		return 0, err
	}
	defer r.v.db.exit()
	defer func() {
		if rec := recover(); rec != nil {
			err = r.v.db.panicked(rec, "group "+r.v.short+": read snapshot "+r.meta.ID)
			r.err, r.cur = err, nil
		}
	}()
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for len(r.cur) == 0 {
		if err := r.advance(); err != nil {
			r.err, r.cur = err, nil
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *snapReader) corrupt(format string, args ...any) error {
	return r.v.corrupt("snapshot %s: %s", r.meta.ID, fmt.Sprintf(format, args...))
}

// advance moves to the next chunk and checks it, or checks the totals at
// the end.
func (r *snapReader) advance() error {
	var ok bool
	if !r.started {
		r.started, ok = true, r.it.First()
	} else {
		ok = r.it.Next()
	}
	m := r.meta
	if !ok {
		if err := r.it.Error(); err != nil {
			return r.v.db.readErr(err)
		}
		switch {
		case r.chunk != m.Chunks:
			return r.corrupt("ends after %d of %d chunks", r.chunk, m.Chunks)
		case r.size != m.Size:
			return r.corrupt("holds %d bytes, metadata says %d", r.size, m.Size)
		case r.crc != m.CRC:
			return r.corrupt("checksum of the whole snapshot is %08x, metadata says %08x", r.crc, m.CRC)
		}
		return io.EOF
	}
	key := r.it.Key()
	seq, n, err := chunkKeyParts(key)
	if err != nil {
		return r.corrupt("%v", err)
	}
	if seq != m.Seq || n != r.chunk {
		return r.corrupt("chunk %d is missing (next stored is %d)", r.chunk, n)
	}
	val, err := r.it.ValueAndErr()
	if err != nil {
		return r.v.db.readErr(err)
	}
	data, err := checkChunk(key, val)
	if err != nil {
		return r.corrupt("chunk %d of %d: %v", n, m.Chunks, err)
	}
	if r.size+int64(len(data)) > m.Size {
		return r.corrupt("chunk %d runs past the size in the metadata (%d bytes)", n, m.Size)
	}
	r.crc = crc32.Update(r.crc, castagnoli, data)
	r.size += int64(len(data))
	r.chunk++
	r.cur = data
	return nil
}

// checkChunk checks a stored snapshot chunk, data and a CRC-32C of key and
// data, and returns its data.
func checkChunk(key, val []byte) ([]byte, error) {
	if len(val) < 4 {
		return nil, fmt.Errorf("%d bytes is truncated", len(val))
	}
	data := val[:len(val)-4]
	sum := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, data)
	if got := binary.BigEndian.Uint32(val[len(val)-4:]); got != sum {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", got, sum)
	}
	return data, nil
}

// Close implements io.Closer. It is idempotent.
func (r *snapReader) Close() error {
	db := r.v.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	db.regMu.Lock()
	_, open := db.readers[r]
	delete(db.readers, r)
	db.regMu.Unlock()
	if !open {
		return nil
	}
	if r.err == nil || r.err == io.EOF {
		r.err = errReaderClosed
	}
	r.cur = nil
	return r.it.Close()
}

var errReaderClosed = fmt.Errorf("%w: snapshot reader", ErrClosed)

// abandon closes the reader's iterator because the DB is closing. The
// caller holds db.mu for writing and db.regMu.
func (r *snapReader) abandon() {
	r.err, r.cur = ErrClosed, nil
	_ = r.it.Close()
}
