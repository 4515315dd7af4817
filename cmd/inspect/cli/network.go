package cli

import (
	"context"
	"errors"
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
		case first, v.Term > best.Term, v.Term == best.Term && v.LastIndex > best.LastIndex:
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

// errUnknown is a name or id that matches no group.
var errUnknown = errors.New("unknown")

// findGroup resolves a group id (or a prefix of its hex form) or a
// collection name, optionally "kind/name".
func findGroup(gs []*group, ref string) (*group, error) {
	var matches []*group
	kind, name, hasKind := strings.Cut(ref, "/")
	if !hasKind {
		name = ref
	}
	for _, g := range gs {
		if g.name() == name && (!hasKind || g.kind() == kind) {
			matches = append(matches, g)
		}
	}
	if len(matches) == 0 && len(ref) >= 4 && isHex(ref) {
		for _, g := range gs {
			if strings.HasPrefix(g.ID.String(), strings.ToLower(ref)) {
				matches = append(matches, g)
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w group or collection %q: `inspect groups` lists what is there", errUnknown, ref)
	case 1:
		return matches[0], nil
	}
	var names []string
	for _, g := range matches {
		names = append(names, g.ID.Short()+" ("+describe(g)+")")
	}
	return nil, fmt.Errorf("%q is ambiguous: %s; use kind/name or an id", ref, strings.Join(names, ", "))
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
