package groups

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// Members that open one key with different settings get different group
// ids and never meet: each group announces on its id's subject only. So
// that they find out, every member also tells what went into its id on a
// subject of its key, in a scope of its key and secret (members with
// another secret cannot open it, and are not told): once on joining, once
// more whenever it hears a member of another group for the first time (so
// that a newcomer hears back at once), and every identityInterval. Members
// of other groups are recorded (mismatches), logged and shown in Status,
// and explain an Online that gives up.

// identity is what a member tells everyone that opened its key.
type identity struct {
	_         struct{} `cbor:",toarray"`
	ID        ID
	Protocol  string
	Signature string // cut to maxIdentitySignature bytes; the id covers all of it
	Heartbeat time.Duration
	Election  time.Duration
	Tickets   [32]byte // a digest of the ticket rules; zero without
	Voter     bool     // the member may vote: not an Observer
}

const (
	// maxIdentitySize bounds an identity message; larger ones are dropped
	// undecoded.
	maxIdentitySize = 1024
	// maxIdentitySignature is how much of its signature a member shows.
	maxIdentitySignature = 512
	maxIdentityProtocol  = 64
	// maxMismatches bounds the other groups a member records, and
	// maxMismatchPeers the members it counts of each; beyond, the one heard
	// least recently is forgotten.
	maxMismatches    = 16
	maxMismatchPeers = 64
	// mismatchLogEvery is how often the warning about one other group may
	// repeat while it is heard; a member logs at most maxMismatches such
	// warnings within it, so that made-up groups cannot flood its log.
	mismatchLogEvery = 10 * time.Minute
)

// identityInterval is how often a member tells its identity: 30
// announcements, within 1 to 15 seconds (15 s at the default timings).
func (c *Config) identityInterval() time.Duration {
	return min(max(30*c.announceInterval(), time.Second), 15*time.Second)
}

// mismatchWindow is how long another group counts as present after it
// was last heard.
func (c *Config) mismatchWindow() time.Duration { return 3*c.identityInterval() + c.announceInterval() }

// identityScope is the id of the scope and subject identities travel in:
// a digest of the key, so the subject does not show the key itself.
func identityScope(key Key) [32]byte { return digest("mosaik.groups.identity.v1", key[:]) }

func newIdentity(id ID, signature string, c *Config) identity {
	if len(signature) > maxIdentitySignature {
		signature = strings.ToValidUTF8(signature[:maxIdentitySignature], "") + "…"
	}
	var tickets [32]byte
	if c.Tickets != nil {
		tickets = digest("mosaik.groups.tickets.v1", c.Tickets.idBytes())
	}
	return identity{
		ID: id, Protocol: protocolVersion, Signature: signature,
		Heartbeat: c.HeartbeatInterval, Election: c.ElectionTimeout,
		Tickets: tickets, Voter: !c.Preference.IsObserver(),
	}
}

func (a *identity) valid() bool {
	return len(a.Protocol) <= maxIdentityProtocol && len(a.Signature) <= maxIdentitySignature+len("…") &&
		a.Heartbeat >= 0 && a.Election >= 0
}

// differs names each setting of the id that differs between a (here) and
// b (there).
func (a *identity) differs(b *identity) []string {
	var out []string
	if a.Protocol != b.Protocol {
		out = append(out, fmt.Sprintf("protocol %q here, %q there", a.Protocol, b.Protocol))
	}
	if a.Signature != b.Signature {
		out = append(out, fmt.Sprintf("signature %q here, %q there", a.Signature, b.Signature))
	}
	if a.Heartbeat != b.Heartbeat {
		out = append(out, fmt.Sprintf("HeartbeatInterval %v here, %v there", a.Heartbeat, b.Heartbeat))
	}
	if a.Election != b.Election {
		out = append(out, fmt.Sprintf("ElectionTimeout %v here, %v there", a.Election, b.Election))
	}
	switch zero := [32]byte{}; {
	case a.Tickets == b.Tickets:
	case a.Tickets == zero:
		out = append(out, "no tickets here, tickets required there")
	case b.Tickets == zero:
		out = append(out, "tickets required here, none there")
	default:
		out = append(out, "Tickets with another issuer or audience there")
	}
	if len(out) == 0 {
		out = append(out, "the settings shown are the same, the ids differ (another version of mosaik?)")
	}
	return out
}

// mismatches records the other groups a member heard under its key. The
// identity subscription's handler fills it; Status, Online and the
// membership goroutine (which prunes it) read it. Safe for concurrent use.
type mismatches struct {
	mu     sync.Mutex
	groups map[ID]*otherGroup
	warned []time.Time // the last warnings, at most maxMismatches
}

type otherGroup struct {
	ident   identity
	differs []string
	peers   map[transport.PeerID]otherPeer
	heard   time.Time
	logged  time.Time // when its warning was last logged
}

type otherPeer struct {
	heard time.Time
	voter bool
}

// heard records that p announced a of another group. It reports whether
// the group is to be warned of now (first heard, or not for
// mismatchLogEvery), and whether p is new to it.
func (ms *mismatches) heard(p transport.PeerID, a *identity, differs func() []string, now time.Time) (warn, newPeer bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.groups == nil {
		ms.groups = map[ID]*otherGroup{}
	}
	g := ms.groups[a.ID]
	if g == nil {
		if len(ms.groups) >= maxMismatches {
			delete(ms.groups, oldest(ms.groups, func(g *otherGroup) time.Time { return g.heard }))
		}
		g = &otherGroup{ident: *a, differs: differs(), peers: map[transport.PeerID]otherPeer{}}
		ms.groups[a.ID] = g
	}
	_, known := g.peers[p]
	if !known && len(g.peers) >= maxMismatchPeers {
		delete(g.peers, oldest(g.peers, func(o otherPeer) time.Time { return o.heard }))
	}
	g.peers[p] = otherPeer{heard: now, voter: a.Voter}
	g.heard = now
	if warn = now.Sub(g.logged) >= mismatchLogEvery && ms.mayWarn(now); warn {
		g.logged = now
	}
	return warn, !known
}

// mayWarn takes one of the maxMismatches warnings allowed per
// mismatchLogEvery, if one is left. Called with mu held.
func (ms *mismatches) mayWarn(now time.Time) bool {
	for len(ms.warned) > 0 && now.Sub(ms.warned[0]) >= mismatchLogEvery {
		ms.warned = ms.warned[1:]
	}
	if len(ms.warned) >= maxMismatches {
		return false
	}
	ms.warned = append(ms.warned, now)
	return true
}

// oldest returns the key of m whose time is earliest.
func oldest[K comparable, V any](m map[K]V, at func(V) time.Time) K {
	var (
		key   K
		first time.Time
		found bool
	)
	for k, v := range m {
		if t := at(v); !found || t.Before(first) {
			key, first, found = k, t, true
		}
	}
	return key
}

// prune forgets groups and peers not heard within window.
func (ms *mismatches) prune(now time.Time, window time.Duration) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for id, g := range ms.groups {
		for p, o := range g.peers {
			if now.Sub(o.heard) > window {
				delete(g.peers, p)
			}
		}
		if len(g.peers) == 0 {
			delete(ms.groups, id)
		}
	}
}

// list returns the groups heard, by id.
func (ms *mismatches) list() []Mismatch {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make([]Mismatch, 0, len(ms.groups))
	for id, g := range ms.groups {
		m := Mismatch{ID: id, Peers: len(g.peers), Signature: g.ident.Signature, Differs: slices.Clone(g.differs), LastHeard: g.heard}
		for _, o := range g.peers {
			if o.voter {
				m.Voters++
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Mismatch) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// onIdentity handles an identity told under this member's key.
func (c *core) onIdentity(m *transport.Msg) {
	if len(m.Data) > maxIdentitySize {
		c.log.Debug("groups: identity over its size limit dropped", "from", m.From.Short(), "bytes", len(m.Data))
		return
	}
	var a identity
	if err := decodeWire(m.Data, &a); err != nil || !a.valid() {
		c.log.Debug("groups: malformed identity dropped", "from", m.From.Short(), "err", err)
		return
	}
	if a.ID == c.id {
		return // a member of this group: its announcements tell the rest
	}
	warn, newPeer := c.mismatch.heard(m.From, &a, func() []string { return c.ident.differs(&a) }, time.Now())
	if newPeer {
		// Answer, so that it hears of this group without waiting.
		c.identifyNow.Store(true)
	}
	if warn {
		args := []any{"other", a.ID.Short(), "from", m.From.Short(), "differs", strings.Join(c.ident.differs(&a), "; ")}
		for _, k := range []string{"kind", "name"} {
			if v, ok := c.cfg.Labels[k]; ok {
				args = append(args, k, v)
			}
		}
		c.log.Warn("groups: members of another group opened this group's key (a collection's kind and name) with other settings: "+
			"the two groups never meet and hold different data", args...)
	}
}

// identify tells this member's identity now.
func (c *core) identify() {
	b, err := rsm.Marshal(c.ident)
	if err == nil {
		err = c.identScope.Publish(c.identSubj, transport.PeerID{}, b)
	}
	if err != nil && !c.isClosing() {
		c.log.Debug("groups: identity not told", "err", err)
	}
}

// identifyRound is the membership goroutine's part: tell the identity when
// it is due or asked for, and forget other groups no longer heard.
func (c *core) identifyRound(now time.Time) {
	if c.identifyNow.Swap(false) || now.Sub(c.identifiedAt) >= c.cfg.identityInterval() {
		c.identifiedAt = now
		c.identify()
	}
	c.mismatch.prune(now, c.cfg.mismatchWindow())
}

// Mismatches lists the other groups this member hears under its key:
// members that opened the same key (a collection's kind and name) with
// other settings.
func (c *core) Mismatches() []Mismatch { return c.mismatch.list() }
