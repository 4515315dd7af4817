package collections

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// The inspect protocol lets a tool that does not know a collection's Go
// types read it: every handle answers on <network>.coll.<group id>.<peer>
// with its state and changes encoded as CBOR (a Change struct per entry).
// Answers come from the published immutable state and the watch history,
// so they never hold up Apply.

// InspectSubject is the subject on which the handle of collection group on
// node peer answers inspect requests.
func InspectSubject(net *transport.Network, group string, peer transport.PeerID) string {
	return net.Subject("coll", group, peer.String())
}

// Inspect request operations.
const (
	// InspectDump reads the state in pages: a request with Session 0 starts
	// a dump of the current state, later pages name the session and the
	// page wanted. The pages of one session all show one version.
	InspectDump uint8 = 1 + iota
	// InspectChanges returns the changes after Since, waiting up to Wait
	// for the first one.
	InspectChanges
	// InspectHead returns the current version and size.
	InspectHead
)

// Inspect reply codes.
const (
	InspectOK uint8 = iota
	InspectCompacted
	InspectUnknownSession
	InspectMalformed
	InspectClosed
)

// InspectRequest is a request of the inspect protocol.
type InspectRequest struct {
	Op      uint8         `cbor:"op"`
	Session uint64        `cbor:"session,omitempty"`
	Page    uint64        `cbor:"page,omitempty"`
	Limit   int           `cbor:"limit,omitempty"`
	Since   Version       `cbor:"since,omitempty"`
	Wait    time.Duration `cbor:"wait,omitempty"`
}

// InspectReply answers an InspectRequest. Items are encoded MapChange,
// VecChange or SetChange values (inserts, for a dump).
type InspectReply struct {
	Code    uint8             `cbor:"code"`
	Msg     string            `cbor:"msg,omitempty"`
	Session uint64            `cbor:"session,omitempty"`
	Page    uint64            `cbor:"page,omitempty"`
	Version Version           `cbor:"version"`
	Total   int               `cbor:"total,omitempty"` // entries in the dumped state
	Items   []cbor.RawMessage `cbor:"items,omitempty"`
	Done    bool              `cbor:"done,omitempty"` // the dump's last page
	Records []InspectRecord   `cbor:"records,omitempty"`
}

// InspectRecord is the changes of one command.
type InspectRecord struct {
	Version Version           `cbor:"version"`
	Changes []cbor.RawMessage `cbor:"changes"`
}

const (
	inspectPageItems = 1000
	inspectPageBytes = 512 << 10
	inspectMaxWait   = 30 * time.Second
	dumpIdle         = 30 * time.Second // a dump session nobody reads is dropped
)

// inspector answers inspect requests for one handle.
type inspector[E any] struct {
	net   *transport.Network
	hist  *history[E]
	state func() (Version, iter.Seq[E])
	size  func() int
	sub   *transport.Subscription

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	nextID   uint64
	sessions map[uint64]*dumpSession[E]
	closed   bool
}

type dumpSession[E any] struct {
	mu      sync.Mutex
	version Version
	total   int
	next    func() (E, bool)
	stop    func()
	page    uint64 // pages handed out
	last    InspectReply
	timer   *time.Timer
}

// serveInspect answers in the group's scope: only those who hold the
// group's secret (anyone, for an open group) can read its contents.
func serveInspect[E any](scope *transport.Scope, subject string, hist *history[E], state func() (Version, iter.Seq[E]), size func() int) (*inspector[E], error) {
	ctx, cancel := context.WithCancel(context.Background())
	net := scope.Network()
	in := &inspector[E]{net: net, hist: hist, state: state, size: size, ctx: ctx, cancel: cancel, sessions: map[uint64]*dumpSession[E]{}}
	sub, err := scope.Subscribe(subject, in.onRequest)
	if err != nil {
		cancel()
		return nil, err
	}
	in.sub = sub
	return in, nil
}

func (in *inspector[E]) close() {
	in.sub.Close()
	in.cancel()
	in.mu.Lock()
	in.closed = true
	sessions := in.sessions
	in.sessions = nil
	in.mu.Unlock()
	for _, s := range sessions {
		s.end()
	}
	in.wg.Wait()
}

func (in *inspector[E]) onRequest(m *transport.Msg) {
	if !m.ExpectsReply() {
		return
	}
	var req InspectRequest
	if err := rsm.Unmarshal(m.Data, &req); err != nil {
		in.respond(m, InspectReply{Code: InspectMalformed, Msg: err.Error()})
		return
	}
	switch req.Op {
	case InspectDump:
		in.respond(m, in.dump(req))
	case InspectHead:
		v, _ := in.state()
		in.respond(m, InspectReply{Version: v, Total: in.size()})
	case InspectChanges:
		// Waiting for changes must not hold up the other requests.
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			in.respond(m, in.changes(req))
		}()
	default:
		in.respond(m, InspectReply{Code: InspectMalformed, Msg: "unknown operation"})
	}
}

func (in *inspector[E]) respond(m *transport.Msg, r InspectReply) {
	if b, err := rsm.Marshal(r); err == nil {
		_ = m.Respond(b)
	}
}

func (in *inspector[E]) dump(req InspectRequest) InspectReply {
	limit := req.Limit
	if limit <= 0 || limit > inspectPageItems {
		limit = inspectPageItems
	}
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return InspectReply{Code: InspectClosed, Msg: "closed"}
	}
	var s *dumpSession[E]
	if req.Session == 0 {
		in.nextID++
		id := in.nextID
		v, all := in.state()
		next, stop := iter.Pull(all)
		s = &dumpSession[E]{version: v, total: in.size(), next: next, stop: stop}
		s.last.Session = id
		s.timer = time.AfterFunc(dumpIdle, func() { in.drop(id) })
		in.sessions[id] = s
	} else {
		s = in.sessions[req.Session]
	}
	in.mu.Unlock()
	if s == nil {
		return InspectReply{Code: InspectUnknownSession, Msg: "dump session unknown or expired"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer.Reset(dumpIdle)
	id := s.last.Session
	switch {
	case req.Session != 0 && req.Page+1 == s.page:
		return s.last // a retry of the last page
	case req.Session != 0 && req.Page != s.page:
		return InspectReply{Code: InspectUnknownSession, Msg: "pages must be read in order"}
	}
	r := InspectReply{Session: id, Page: s.page, Version: s.version, Total: s.total}
	size := 0
	for len(r.Items) < limit && size < inspectPageBytes {
		e, ok := s.next()
		if !ok {
			r.Done = true
			break
		}
		b, err := rsm.Marshal(e)
		if err != nil {
			return InspectReply{Code: InspectMalformed, Msg: err.Error()}
		}
		r.Items = append(r.Items, b)
		size += len(b)
	}
	s.page++
	s.last = r
	if r.Done {
		s.stop() // the session stays until idle, to answer a retry
	}
	return r
}

func (in *inspector[E]) drop(id uint64) {
	in.mu.Lock()
	s := in.sessions[id]
	delete(in.sessions, id)
	in.mu.Unlock()
	if s != nil {
		s.end()
	}
}

func (s *dumpSession[E]) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer.Stop()
	s.stop()
}

func (in *inspector[E]) changes(req InspectRequest) InspectReply {
	limit := req.Limit
	if limit <= 0 || limit > inspectPageItems {
		limit = inspectPageItems
	}
	wait := min(max(req.Wait, 0), inspectMaxWait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		recs, more, err := in.hist.since(req.Since, limit)
		if err != nil {
			return InspectReply{Code: InspectCompacted, Msg: err.Error()}
		}
		r := InspectReply{Version: req.Since}
		size := 0
		for _, rec := range recs {
			r.Version = rec.v
			if len(rec.changes) == 0 {
				continue
			}
			ir := InspectRecord{Version: rec.v}
			for _, c := range rec.changes {
				b, err := rsm.Marshal(c)
				if err != nil {
					return InspectReply{Code: InspectMalformed, Msg: err.Error()}
				}
				ir.Changes = append(ir.Changes, b)
				size += len(b)
			}
			r.Records = append(r.Records, ir)
			if size >= inspectPageBytes {
				break
			}
		}
		if len(recs) > 0 {
			return r
		}
		select {
		case <-more:
		case <-timer.C:
			return r
		case <-in.ctx.Done():
			return InspectReply{Code: InspectClosed, Msg: "closed"}
		}
	}
}
