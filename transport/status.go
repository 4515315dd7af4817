package transport

import (
	"context"
	"errors"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// NodeStatus is what a node tells anyone who asks on the network's status
// subject: who it is, and a section per part of the SDK that registered one
// (groups lists its groups, collections their names and types).
type NodeStatus struct {
	Peer     PeerID                     `cbor:"peer"`
	Network  string                     `cbor:"network"`
	Started  time.Time                  `cbor:"started"`
	URL      string                     `cbor:"url"`
	Sections map[string]cbor.RawMessage `cbor:"sections,omitempty"`
}

// statusSections are the registered status sections of a node.
type statusSections struct {
	mu       sync.Mutex
	sections map[string]func() any
}

// SetStatus makes fn's answer part of this node's status, under section; a
// nil fn removes the section. fn runs on the goroutine answering status
// requests: it must be quick and never wait on a state machine.
func (n *Network) SetStatus(section string, fn func() any) {
	s := &n.status
	s.mu.Lock()
	defer s.mu.Unlock()
	if fn == nil {
		delete(s.sections, section)
		return
	}
	if s.sections == nil {
		s.sections = map[string]func() any{}
	}
	s.sections[section] = fn
}

// Status returns this node's status, as it answers it on the network. Its URL
// is the node's URL without credentials (see redactURL): anyone on the
// network may ask for it.
func (n *Network) Status() NodeStatus {
	st := NodeStatus{Peer: n.id, Network: n.name, Started: n.started, URL: redactURL(n.URL())}
	s := &n.status
	s.mu.Lock()
	fns := maps.Clone(s.sections)
	s.mu.Unlock()
	for name, fn := range fns {
		b, err := encMode.Marshal(fn())
		if err != nil {
			n.log.Warn("transport: status section", "section", name, "err", err)
			continue
		}
		if st.Sections == nil {
			st.Sections = map[string]cbor.RawMessage{}
		}
		st.Sections[name] = b
	}
	return st
}

// onStatus answers a status request.
func (n *Network) onStatus(m *Msg) {
	if !m.ExpectsReply() {
		n.stats.malformed.Add(1)
		return
	}
	b, err := encMode.Marshal(n.Status())
	if err != nil {
		n.log.Warn("transport: encode status", "err", err)
		return
	}
	_ = m.Respond(b)
}

// surveyQuiet is how long Survey waits for more answers after the last.
const surveyQuiet = 300 * time.Millisecond

// Survey asks every node of the network for its status and returns the
// answers, ordered by peer, leaving out this node itself. It waits until ctx ends, or until no new answer
// came for a moment after the first. It is an error only when nobody answers.
func (n *Network) Survey(ctx context.Context) ([]NodeStatus, error) {
	var (
		mu      sync.Mutex
		out     = map[PeerID]NodeStatus{}
		arrived = make(chan struct{}, 1)
	)
	stop, err := n.callPlain(n.Subject("status"), PeerID{}, nil, func(b []byte, err error) {
		if err != nil {
			return
		}
		var st NodeStatus
		if decMode.Unmarshal(b, &st) != nil || st.Peer.IsZero() {
			n.stats.malformed.Add(1)
			return
		}
		if st.Peer == n.id {
			return // the asker is a node too
		}
		mu.Lock()
		out[st.Peer] = st
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-arrived:
			quiet.Reset(surveyQuiet)
		case <-quiet.C:
			break wait
		case <-n.done:
			stop()
			return nil, ErrClosed
		}
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	list := make([]NodeStatus, 0, len(out))
	for _, st := range out {
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Peer.Compare(list[j].Peer) < 0 })
	if len(list) == 0 {
		return nil, errors.New("transport: no node answered the status request")
	}
	return list, nil
}
