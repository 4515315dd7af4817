package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// connect joins the network as a quiet node of its own: it answers status
// requests like any node, and the surveys leave it out.
func (o *options) connect(ctx context.Context) (*transport.Network, error) {
	cctx, cancel := context.WithTimeout(ctx, o.timeout+time.Second)
	defer cancel()
	net, err := transport.New(cctx, transport.WithURL(o.url), transport.WithNetwork(o.network), transport.WithRPCTimeout(o.timeout))
	if err != nil {
		return nil, fmt.Errorf("cannot reach the network at %s: %w", o.url, err)
	}
	return net, nil
}

// node is one node's answer to a survey, with its groups decoded.
type node struct {
	transport.NodeStatus
	Groups []groups.Status
}

// survey asks every node of the network for its status.
func (o *options) survey(ctx context.Context, net *transport.Network) ([]node, error) {
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	sts, err := net.Survey(sctx)
	if err != nil {
		return nil, fmt.Errorf("no node of network %q answered at %s", o.network, o.url)
	}
	out := make([]node, 0, len(sts))
	for _, st := range sts {
		n := node{NodeStatus: st}
		if raw, ok := st.Sections[groups.StatusSection]; ok {
			if err := rsm.Unmarshal(raw, &n.Groups); err != nil {
				return nil, fmt.Errorf("node %s sent a status this inspect cannot read: %w", st.Peer.Short(), err)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// group is one group as the nodes running it describe it.
type group struct {
	ID     groups.ID
	Labels map[string]string
	// Views holds each answering member's own status, by peer.
	Views map[transport.PeerID]groups.Status
}

func (g *group) name() string  { return g.Labels[inspectwire.LabelName] }
func (g *group) kind() string  { return g.Labels[inspectwire.LabelKind] }
func (g *group) types() string { return g.Labels[inspectwire.LabelTypes] }

// view returns the most authoritative view of the group: the leader's if it
// answered, else the one with the highest term and log.
func (g *group) view() groups.Status {
	var best groups.Status
	first := true
	for _, v := range g.Views {
		switch {
		case v.Role == "leader" && (best.Role != "leader" || v.Term > best.Term):
		case best.Role == "leader":
			continue
		case first, v.Term > best.Term, v.Term == best.Term && v.LogLast > best.LogLast:
		default:
			continue
		}
		best, first = v, false
	}
	return best
}

// collectGroups gathers the groups the nodes reported, ordered by name then id.
func collectGroups(nodes []node) []*group {
	byID := map[groups.ID]*group{}
	for _, n := range nodes {
		for _, st := range n.Groups {
			g := byID[st.ID]
			if g == nil {
				g = &group{ID: st.ID, Labels: map[string]string{}, Views: map[transport.PeerID]groups.Status{}}
				byID[st.ID] = g
			}
			for k, v := range st.Labels {
				if k != inspectwire.LabelRole { // each member's own
					g.Labels[k] = v
				}
			}
			g.Views[st.Self] = st
		}
	}
	out := make([]*group, 0, len(byID))
	for _, g := range byID {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].name() != out[j].name() {
			return out[i].name() < out[j].name()
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// findGroup resolves ref to one group. A ref is a collection's name, or
// kind/name, either followed by @types or @id-prefix when those collide
// (map/scores@string,int, scores@b310ef3d); or a prefix of a group id, 4
// hex digits or more. A name is taken as it is first, so that names holding
// "/" or "@" still work.
func findGroup(gs []*group, ref string) (*group, error) {
	matches := matchGroups(gs, ref)
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w group or collection %q: `inspect groups` lists what is there", errUnknown, ref)
	case 1:
		return matches[0], nil
	}
	e := &ambiguousError{Ref: ref}
	for _, g := range matches {
		e.Candidates = append(e.Candidates, candidate{Ref: refFor(gs, g), ID: g.ID, What: describe(g)})
	}
	return nil, e
}

// matchGroups returns the groups ref names, by the first of its readings
// that names any: the name as it is, kind/name, name@qualifier,
// kind/name@qualifier; else as an id prefix.
func matchGroups(gs []*group, ref string) []*group {
	type reading struct {
		kind, name, qual string
		hasKind, hasQual bool
	}
	readings := []reading{{name: ref}}
	kind, rest, hasKind := strings.Cut(ref, "/")
	if hasKind {
		readings = append(readings, reading{kind: kind, name: rest, hasKind: true})
	}
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		readings = append(readings, reading{name: ref[:i], qual: ref[i+1:], hasQual: true})
	}
	if i := strings.LastIndex(rest, "@"); hasKind && i >= 0 {
		readings = append(readings, reading{kind: kind, name: rest[:i], qual: rest[i+1:], hasKind: true, hasQual: true})
	}
	for _, r := range readings {
		var out []*group
		for _, g := range gs {
			if g.name() == r.name && (!r.hasKind || g.kind() == r.kind) && (!r.hasQual || qualifies(g, r.qual)) {
				out = append(out, g)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	var out []*group
	if len(ref) >= 4 && isHex(ref) {
		for _, g := range gs {
			if strings.HasPrefix(g.ID.String(), strings.ToLower(ref)) {
				out = append(out, g)
			}
		}
	}
	return out
}

// qualifies reports whether q, what follows a name's "@", names g: a
// collection's types as inspect groups shows them (spaces aside), or a
// prefix of its id.
func qualifies(g *group, q string) bool {
	q = strings.ReplaceAll(q, " ", "")
	switch {
	case q == "":
		return false
	case g.kind() != "" && q == strings.ReplaceAll(g.types(), " ", ""):
		return true
	}
	return isHex(q) && strings.HasPrefix(g.ID.String(), strings.ToLower(q))
}

// refFor is the shortest of the usual references that names g alone among
// gs: kind/name, then with @types, then with @id-prefix; else its id.
func refFor(gs []*group, g *group) string {
	var refs []string
	switch {
	case g.kind() != "":
		kn := g.kind() + "/" + g.name()
		refs = append(refs, kn, kn+"@"+g.types(), kn+"@"+g.ID.Short())
	case g.name() != "":
		refs = append(refs, g.name()+"@"+g.ID.Short())
	}
	refs = append(refs, g.ID.Short())
	for _, r := range refs {
		if m := matchGroups(gs, r); len(m) == 1 && m[0] == g {
			return r
		}
	}
	return g.ID.String()
}

// isHex reports whether s holds only hex digits, in either case.
func isHex(s string) bool { return strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" }

func describe(g *group) string {
	if g.kind() == "" {
		return "group"
	}
	return g.kind() + " " + g.name() + "[" + g.types() + "]"
}

func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return d.Round(time.Millisecond).String() + " ago"
}

func short(p transport.PeerID) string {
	if p.IsZero() {
		return "-"
	}
	return p.Short()
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
