package groups

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// dnode is a member with a data directory: its own storage.DB, a network
// connection with the DB's node id, and a group of machine M.
type dnode[C, Q, R any] struct {
	t      testing.TB
	dir    string
	db     *storage.DB
	net    *transport.Network
	faults *transport.Faults
	g      *Group[C, Q, R]
	once   sync.Once
}

// startDurable opens dir, connects to the cluster's NATS server as the
// node the directory names, and joins the cluster's group with sm. It
// stops the node at the end of the test (before the cluster's server).
func startDurable[C, Q, R any](t testing.TB, c *cluster, dir string, sm rsm.StateMachine[C, Q, R], cfg *Config) *dnode[C, Q, R] {
	t.Helper()
	return startDurableOn(t, c, dir, nil, sm, cfg)
}

// startDurableOn is startDurable with the storage's options (its file
// system, for one).
func startDurableOn[C, Q, R any](t testing.TB, c *cluster, dir string, opts *storage.Options, sm rsm.StateMachine[C, Q, R], cfg *Config) *dnode[C, Q, R] {
	t.Helper()
	db, err := storage.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := transport.NewFaults()
	ident, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	n, err := transport.New(context.Background(), transport.WithURL(c.url), transport.WithFaults(f),
		transport.WithIdentity(ident))
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = testConfig()
	}
	cc := *cfg
	cc.Storage = db
	g, err := Join(n, c.key, sm, &cc)
	if err != nil {
		n.Close()
		db.Close()
		t.Fatal(err)
	}
	d := &dnode[C, Q, R]{t: t, dir: dir, db: db, net: n, faults: f, g: g}
	t.Cleanup(d.stop)
	return d
}

// stop closes the group, the network and the DB, in that order. Idempotent.
func (d *dnode[C, Q, R]) stop() {
	d.once.Do(func() {
		if err := d.g.Close(); err != nil {
			d.t.Errorf("close group: %v", err)
		}
		d.net.Close()
		if err := d.db.Close(); err != nil {
			d.t.Errorf("close storage: %v", err)
		}
	})
}

func (d *dnode[C, Q, R]) id() transport.PeerID { return d.net.ID() }

// leaderOf waits until the members agree on a ready leader and returns it.
func leaderOf[C, Q, R any](t testing.TB, nodes ...*dnode[C, Q, R]) *dnode[C, Q, R] {
	t.Helper()
	var found *dnode[C, Q, R]
	waitFor(t, 20*time.Second, "an agreed leader", func() bool {
		found = nil
		var id transport.PeerID
		for _, nd := range nodes {
			l, ok := nd.g.Leader()
			if !ok || (!id.IsZero() && l != id) {
				return false
			}
			id = l
		}
		for _, nd := range nodes {
			if nd.id() == id && nd.g.IsLeader() {
				found = nd
			}
		}
		return found != nil
	})
	return found
}

func onlineAll[C, Q, R any](t testing.TB, nodes ...*dnode[C, Q, R]) {
	t.Helper()
	for _, nd := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := nd.g.When().Online(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s not online: %v", nd.id().Short(), err)
		}
	}
}

// convergeAll waits until every member applied the same index.
func convergeAll[C, Q, R any](t testing.TB, d time.Duration, nodes ...*dnode[C, Q, R]) rsm.Index {
	t.Helper()
	var idx rsm.Index
	waitFor(t, d, "replicas to converge", func() bool {
		idx = nodes[0].g.Applied()
		for _, nd := range nodes[1:] {
			if nd.g.Applied() != idx {
				return false
			}
		}
		return true
	})
	return idx
}

// ledger is a machine whose snapshots exercise the storage: it counts and
// sums the values applied, and keeps a running digest of them in order, so
// two replicas with equal state applied the same commands in the same
// order. Its snapshot is the state followed by Pad bytes generated from
// the state, which Restore regenerates and compares byte for byte: a
// snapshot of any size, with no more memory than a buffer.
type ledger struct {
	Pad int64 // snapshot padding; not state

	mu       sync.Mutex
	st       ledgerState
	restores atomic.Int32
}

type ledgerState struct {
	N      int64
	Sum    int64
	Digest [32]byte
}

type ledgerCmd struct{ V int64 }

func (m *ledger) Signature() string { return "test.ledger.v1" }

func (m *ledger) Apply(c ledgerCmd, _ rsm.ApplyContext) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.N++
	m.st.Sum += c.V
	h := sha256.New()
	h.Write(m.st.Digest[:])
	binary.Write(h, binary.BigEndian, c.V)
	h.Sum(m.st.Digest[:0])
}

func (m *ledger) Query(struct{}) ledgerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

func (m *ledger) state() ledgerState { return m.Query(struct{}{}) }

func (m *ledger) Snapshot() (rsm.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ledgerSnap{st: m.st, pad: m.Pad}, nil
}

func (m *ledger) Restore(r io.Reader) error {
	var hdr [8 + 8 + 32 + 8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("ledger: header: %w", err)
	}
	var st ledgerState
	st.N = int64(binary.BigEndian.Uint64(hdr[0:]))
	st.Sum = int64(binary.BigEndian.Uint64(hdr[8:]))
	copy(st.Digest[:], hdr[16:48])
	pad := int64(binary.BigEndian.Uint64(hdr[48:]))
	gen := padSource(st, pad)
	want := make([]byte, 256<<10)
	got := make([]byte, 256<<10)
	for left := pad; left > 0; {
		n := int(min(left, int64(len(want))))
		gen.Read(want[:n])
		if _, err := io.ReadFull(r, got[:n]); err != nil {
			return fmt.Errorf("ledger: padding at %d of %d: %w", pad-left, pad, err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			return fmt.Errorf("ledger: padding differs at %d", pad-left)
		}
		left -= int64(n)
	}
	if n, _ := r.Read(got[:1]); n != 0 {
		return errors.New("ledger: bytes after the padding")
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	m.restores.Add(1)
	return nil
}

func padSource(st ledgerState, pad int64) *rand.ChaCha8 {
	seed := st.Digest
	binary.BigEndian.PutUint64(seed[:8], uint64(pad)^uint64(st.N))
	return rand.NewChaCha8(seed)
}

type ledgerSnap struct {
	st  ledgerState
	pad int64
}

func (s ledgerSnap) Persist(w io.Writer) error {
	var hdr [8 + 8 + 32 + 8]byte
	binary.BigEndian.PutUint64(hdr[0:], uint64(s.st.N))
	binary.BigEndian.PutUint64(hdr[8:], uint64(s.st.Sum))
	copy(hdr[16:48], s.st.Digest[:])
	binary.BigEndian.PutUint64(hdr[48:], uint64(s.pad))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	gen := padSource(s.st, s.pad)
	buf := make([]byte, 256<<10)
	for left := s.pad; left > 0; {
		n := int(min(left, int64(len(buf))))
		gen.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		left -= int64(n)
	}
	return nil
}

func (ledgerSnap) Release() {}

// snapshotNow makes a member take a snapshot and compact its log now,
// rather than when Raft next checks the threshold (see the report: Raft
// checks only every SnapshotInterval, 120s by default).
func snapshotNow[C, Q, R any](t testing.TB, nd *dnode[C, Q, R]) {
	t.Helper()
	if err := nd.g.raft.Load().Snapshot().Error(); err != nil {
		t.Fatalf("%s: snapshot: %v", nd.id().Short(), err)
	}
}
