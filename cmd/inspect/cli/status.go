package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

// withNetwork runs f with a connection to the network and the survey of it.
func withNetwork(cmd *cobra.Command, o *options, f func(net *transport.Network, nodes []node) error) error {
	net, err := o.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer net.Close()
	nodes, err := o.survey(cmd.Context(), net)
	if err != nil {
		return err
	}
	return f(net, nodes)
}

type peerJSON struct {
	Peer    string    `json:"peer"`
	Started time.Time `json:"started"`
	URL     string    `json:"url"`
	Groups  []string  `json:"groups"`
}

func peersCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the nodes of the network",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNetwork(cmd, o, func(_ *transport.Network, nodes []node) error {
				out := make([]peerJSON, 0, len(nodes))
				for _, n := range nodes {
					p := peerJSON{Peer: n.Peer.String(), Started: n.Started, URL: n.URL, Groups: []string{}}
					for _, g := range n.Groups {
						p.Groups = append(p.Groups, g.ID.String())
					}
					out = append(out, p)
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), out)
				}
				now := time.Now()
				var rows [][]string
				for _, n := range nodes {
					rows = append(rows, []string{n.Peer.Short(), strconv.Itoa(len(n.Groups)), ago(n.Started, now), n.URL})
				}
				return table(cmd.OutOrStdout(), []string{"PEER", "GROUPS", "STARTED", "URL"}, rows)
			})
		},
	}
}

type groupJSON struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels"`
	Leader    string            `json:"leader"`
	Term      uint64            `json:"term"`
	Committed uint64            `json:"committed"`
	Voters    int               `json:"voters"`
	NonVoters int               `json:"non_voters"`
	Answered  int               `json:"answered"` // members that answered the survey
	// Mismatches are other groups its members hear under its key: the same
	// collection name opened with other types or settings.
	Mismatches []mismatchJSON `json:"mismatches,omitempty"`
}

type mismatchJSON struct {
	ID      string   `json:"id"`
	Peers   int      `json:"peers"`
	Differs []string `json:"differs"`
}

// mismatches gathers what the group's members report of other groups under
// its key, by id, as the member that hears most of each reports it.
func (g *group) mismatches() []mismatchJSON {
	byID := map[groups.ID]groups.Mismatch{}
	for _, v := range g.Views {
		for _, m := range v.Mismatches {
			if old, ok := byID[m.ID]; !ok || m.Peers > old.Peers {
				byID[m.ID] = m
			}
		}
	}
	out := make([]mismatchJSON, 0, len(byID))
	for id, m := range byID {
		out = append(out, mismatchJSON{ID: id.String(), Peers: m.Peers, Differs: m.Differs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) == 0 {
		return nil
	}
	return out
}

func summarize(g *group) groupJSON {
	v := g.view()
	j := groupJSON{ID: g.ID.String(), Labels: g.Labels, Term: v.Term, Committed: uint64(v.LogCommitted), Answered: len(g.Views), Mismatches: g.mismatches()}
	if !v.Leader.IsZero() {
		j.Leader = v.Leader.String()
	}
	for _, m := range v.Members {
		if m.Voter {
			j.Voters++
		} else {
			j.NonVoters++
		}
	}
	return j
}

func groupsCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "groups",
		Short: "List the groups and collections on the network",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNetwork(cmd, o, func(_ *transport.Network, nodes []node) error {
				gs := collectGroups(nodes)
				if o.json {
					out := make([]groupJSON, 0, len(gs))
					for _, g := range gs {
						out = append(out, summarize(g))
					}
					return printJSON(cmd.OutOrStdout(), out)
				}
				var rows [][]string
				var notes []string
				for _, g := range gs {
					s := summarize(g)
					id := g.ID.Short()
					for _, m := range s.Mismatches {
						id = g.ID.Short() + "!"
						notes = append(notes, fmt.Sprintf("! %s hears group %s under its name, with other settings (members heard: %d); they never meet: %s",
							g.ID.Short(), m.ID[:8], m.Peers, strings.Join(m.Differs, "; ")))
					}
					rows = append(rows, []string{id, dash(g.kind()), dash(g.name()), dash(g.types()),
						short(g.view().Leader), u64(s.Term), u64(s.Committed),
						fmt.Sprintf("%d+%d", s.Voters, s.NonVoters), strconv.Itoa(s.Answered)})
				}
				w := cmd.OutOrStdout()
				if err := table(w, []string{"ID", "KIND", "NAME", "TYPES", "LEADER", "TERM", "COMMITTED", "MEMBERS", "ANSWERED"}, rows); err != nil {
					return err
				}
				if len(notes) > 0 {
					fmt.Fprintln(w)
					for _, n := range notes {
						fmt.Fprintln(w, n)
					}
				}
				return nil
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type memberJSON struct {
	Peer        string    `json:"peer"`
	Role        string    `json:"role"`
	Voter       bool      `json:"voter"`
	Preference  string    `json:"preference"`
	LastIndex   uint64    `json:"last_index"`
	Lag         uint64    `json:"lag"`
	LastContact time.Time `json:"last_contact"`
	Answered    bool      `json:"answered"`
}

type groupDetailJSON struct {
	groupJSON
	Seen    string       `json:"seen_by"` // whose view the members are
	Members []memberJSON `json:"members"`
}

func groupCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "group ID-or-NAME",
		Short: "Show a group's members, as its leader (or best informed member) sees them",
		Long: "Show a group's members, as its leader (or best informed member) sees them.\n" +
			"ID-or-NAME is a group id prefix or a collection's name, as dump takes it (inspect dump --help).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNetwork(cmd, o, func(_ *transport.Network, nodes []node) error {
				g, err := findGroup(collectGroups(nodes), args[0])
				if err != nil {
					return err
				}
				v := g.view()
				d := groupDetailJSON{groupJSON: summarize(g), Seen: v.Self.String(), Members: []memberJSON{}}
				for _, m := range v.Members {
					own, answered := g.Views[m.Peer]
					role := roleOf(m, own, answered)
					d.Members = append(d.Members, memberJSON{
						Peer: m.Peer.String(), Role: role, Voter: m.Voter, Preference: m.Preference,
						LastIndex: uint64(m.LogLast), Lag: m.Lag, LastContact: m.LastContact, Answered: answered,
					})
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), d)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "group %s (%s)\n", g.ID, describe(g))
				fmt.Fprintf(w, "leader %s, term %d, committed %d, seen by %s\n\n", short(v.Leader), v.Term, v.LogCommitted, short(v.Self))
				now := time.Now()
				var rows [][]string
				for _, m := range v.Members {
					mj := d.Members[len(rows)]
					contact := ago(m.LastContact, now)
					if m.Peer == v.Self {
						contact = "self"
					}
					rows = append(rows, []string{m.Peer.Short(), mj.Role, yesNo(m.Voter), m.Preference, u64(uint64(m.LogLast)), u64(m.Lag), contact})
				}
				return table(w, []string{"PEER", "ROLE", "VOTER", "PREFERENCE", "LAST INDEX", "LAG", "LAST CONTACT"}, rows)
			})
		},
	}
}

// roleOf is a member's role: its own word if it answered, else what its
// membership implies.
func roleOf(m groups.MemberStatus, own groups.Status, answered bool) string {
	switch {
	case answered:
		return own.Role
	case m.Leader:
		return "leader"
	case m.Voter:
		return "follower"
	default:
		return "non-voter"
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
