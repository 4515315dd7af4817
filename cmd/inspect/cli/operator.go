package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/transport"
)

// operatorWait is how long an operator command may take on the node
// (collections' operatorTimeout), beyond --timeout.
const operatorWait = 30 * time.Second

// operate sends an operator command to src's peer and reads the answer.
// Unlike ask, a refusal keeps its reply, which says what recovery found.
func (s *source) operate(ctx context.Context, req inspectwire.Request) (inspectwire.Reply, error) {
	req.Issued = time.Now().UnixNano() // members drop commands issued long ago (replays)
	r, err := s.ask(ctx, req, operatorWait)
	if err != nil && r.Code != inspectwire.OK && r.Msg != "" {
		return r, fmt.Errorf("%w by %s: %s", errOperator, s.peer.Short(), r.Msg)
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return r, fmt.Errorf("%w (a member also drops, unanswered, an operator command whose issue time, by this machine's clock, is minutes from its own clock or before its collection's handle opened: check the clocks)", err)
	}
	return r, err
}

// pickPeer finds the member of g whose id starts with prefix.
func pickPeer(g *group, prefix string) (transport.PeerID, error) {
	var found []transport.PeerID
	seen := map[transport.PeerID]bool{}
	add := func(p transport.PeerID) {
		if !seen[p] && strings.HasPrefix(p.String(), strings.ToLower(prefix)) {
			seen[p] = true
			found = append(found, p)
		}
	}
	for p, v := range g.Views {
		add(p)
		for _, m := range v.Members {
			add(m.Peer)
		}
	}
	switch {
	case prefix == "":
		return transport.PeerID{}, usageError{errors.New("empty peer id")}
	case len(found) == 0:
		return transport.PeerID{}, fmt.Errorf("no member of %s has an id starting with %q", g.name(), prefix)
	case len(found) > 1:
		return transport.PeerID{}, fmt.Errorf("%d members of %s have ids starting with %q: give more digits", len(found), g.name(), prefix)
	}
	return found[0], nil
}

func recoverCmd(o *options) *cobra.Command {
	var peer string
	cmd := &cobra.Command{
		Use:   "recover NAME",
		Short: "Reform a collection's group that lost a majority of its voters for good",
		Long: "Reform a collection's group from one surviving member, which becomes its only voter and leads;\n" +
			"the other survivors and new members join it as usual. The member refuses while a majority of\n" +
			"the voters or a leader is still heard, or while another reachable survivor has a longer log.\n" +
			"By default the answering voter with the longest log (then the lowest id) is asked; --peer picks one.\n" +
			"Prints what may have been lost. Needs the collection's secret; a collection without one takes\n" +
			"the command only if its handles were opened with collections.WithOperatorCommands().",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCollection(cmd, o, args[0], func(src *source) error {
				target, err := survivor(src.g, peer)
				if err != nil {
					return err
				}
				src.peer = target
				r, err := src.operate(cmd.Context(), inspectwire.Request{Op: inspectwire.OpRecover})
				if r.Recovery != nil {
					if perr := printRecovery(cmd.OutOrStdout(), o, src, r, err == nil); perr != nil {
						return perr
					}
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&peer, "peer", "", "id prefix of the member to recover from")
	return cmd
}

// survivor picks the member to recover from: the one prefix names, or the
// answering voter with the longest log, then the lowest id.
func survivor(g *group, prefix string) (transport.PeerID, error) {
	if prefix != "" {
		return pickPeer(g, prefix)
	}
	var best transport.PeerID
	var last uint64
	for p, v := range g.Views {
		if v.Role == "non-voter" || v.Preference == "observer" {
			continue
		}
		if best.IsZero() || uint64(v.LogLast) > last || (uint64(v.LogLast) == last && p.Compare(best) < 0) {
			best, last = p, uint64(v.LogLast)
		}
	}
	if best.IsZero() {
		return best, fmt.Errorf("no voter of %s answered: nothing to recover from (readers cannot lead)", g.name())
	}
	return best, nil
}

// recoveryJSON is what recover --json prints of a recovery: its keys are
// the CLI's output, not the wire's.
type recoveryJSON struct {
	Previous     []string `json:"Previous"`
	Reachable    []string `json:"Reachable"`
	LastIndex    uint64   `json:"LastIndex"`
	Committed    uint64   `json:"Committed"`
	Uncommitted  uint64   `json:"Uncommitted"`
	HighestIndex uint64   `json:"HighestIndex"`
	HighestPeer  string   `json:"HighestPeer"`
	MayBeLost    uint64   `json:"MayBeLost"`
}

func printRecovery(w io.Writer, o *options, src *source, r inspectwire.Reply, done bool) error {
	rec := r.Recovery
	if o.json {
		return printJSON(w, struct {
			Recovered bool          `json:"recovered"`
			Peer      string        `json:"peer"`
			Version   uint64        `json:"version"`
			Recovery  *recoveryJSON `json:"recovery"`
		}{done, src.peer.String(), r.Version, (*recoveryJSON)(rec)})
	}
	short := func(ps []string) string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p[:min(8, len(p))]
		}
		return strings.Join(out, " ")
	}
	if done {
		fmt.Fprintf(w, "recovered %s/%s on %s: it is the only voter now, and leads (version %d)\n", src.g.kind(), src.g.name(), src.peer.Short(), r.Version)
	} else {
		fmt.Fprintf(w, "not recovered %s/%s on %s\n", src.g.kind(), src.g.name(), src.peer.Short())
	}
	fmt.Fprintf(w, "voters before:    %d (%s)\n", len(rec.Previous), short(rec.Previous))
	fmt.Fprintf(w, "reachable:        %d (%s)\n", len(rec.Reachable), short(rec.Reachable))
	fmt.Fprintf(w, "log:              last index %d, known committed %d\n", rec.LastIndex, rec.Committed)
	if rec.Uncommitted > 0 {
		fmt.Fprintf(w, "uncommitted:      %d entries after %d were never acknowledged; recovery commits them\n", rec.Uncommitted, rec.Committed)
	}
	if rec.MayBeLost > 0 {
		fmt.Fprintf(w, "may be lost:      up to %d entries (indexes %d to %d), which %s announced\n", rec.MayBeLost, rec.LastIndex+1, rec.HighestIndex, short([]string{rec.HighestPeer}))
	} else {
		fmt.Fprintln(w, "may be lost:      nothing any member announced to it")
	}
	if done {
		fmt.Fprintln(w, "next:             start new members (they join as non-voters and are promoted once caught up); never restart a removed durable member with its old data")
	}
	return nil
}

func removeMemberCmd(o *options) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove-member NAME PEER",
		Short: "Remove a member that is gone for good from a collection's group",
		Long: "Ask the leader of the collection's group to remove the member whose id starts with PEER.\n" +
			"The leader refuses a member it heard within its dead-member timeout unless --force.\n" +
			"Needs the collection's secret, as recover does.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCollection(cmd, o, args[0], func(src *source) error {
				p, err := pickPeer(src.g, args[1])
				if err != nil {
					return err
				}
				v := src.g.view()
				if v.Role != "leader" {
					return fmt.Errorf("%s has no leader that answered: a group without a quorum cannot change its members (see inspect recover)", src.g.name())
				}
				src.peer = v.Self
				r, err := src.operate(cmd.Context(), inspectwire.Request{Op: inspectwire.OpRemoveMember, Peer: p.String(), Force: force})
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd.OutOrStdout(), map[string]any{"removed": p.String(), "leader": src.peer.String(), "version": r.Version})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s from %s/%s (leader %s)\n", p.Short(), src.g.kind(), src.g.name(), src.peer.Short())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove the member even if it is alive")
	return cmd
}
