package groups

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/transport"
)

// whyNotOnline explains, from what this member hears now, why it is not
// online; ctxErr is the error of the wait that gave up.
func (c *core) whyNotOnline(ctxErr error) error {
	st := c.when.get()
	e := &NotOnlineError{Err: ctxErr, Mismatches: c.Mismatches()}
	live := c.livePeers(c.cfg.liveWindow())
	for _, a := range live {
		switch {
		case a.Leaving:
		case a.preference().IsObserver():
			e.Observers++
		default:
			e.Voters++
		}
	}
	heard := fmt.Sprintf("hears other members that may vote: %d, observers: %d", e.Voters, e.Observers)
	observer := c.cfg.Preference.IsObserver()
	switch {
	case c.when.online(st):
		e.Reason = ReasonCatchingUp
		e.Detail = fmt.Sprintf("leader %s is known, but this member has applied up to %d only, short of what the leader had committed when Online asked",
			st.leader.Short(), c.fsm.Applied())
	case !st.leader.IsZero() && !st.member:
		e.Reason = ReasonNotAdded
		e.Detail = fmt.Sprintf("leader %s has not added this member yet", st.leader.Short())
	case e.Voters == 0 && observer && len(e.Mismatches) > 0:
		e.Reason = ReasonMismatch
		e.Detail = "this member is an observer and hears no member of its group that may vote, only members of other groups under its key"
	case e.Voters == 0 && (observer || len(live) == 0) && c.hearsForeign(c.cfg.liveWindow()):
		e.Reason = ReasonForeign
		e.Detail = "this member hears only messages it cannot open: other members hold another secret, or none"
	case e.Voters == 0 && observer:
		e.Reason = ReasonNoVoter
		e.Detail = fmt.Sprintf("this member is an observer and hears no member that may vote (other observers heard: %d)", e.Observers)
	default:
		e.Reason = ReasonNoLeader
		e.Detail = "no leader: " + c.noLeaderDetail(live) + "; this member " + heard
	}
	if len(e.Mismatches) > 0 {
		var parts []string
		for _, m := range e.Mismatches {
			parts = append(parts, fmt.Sprintf("%s (members heard: %d; %s)", m.ID.Short(), m.Peers, strings.Join(m.Differs, ", ")))
		}
		e.Detail += "; other groups under this key, which this one never meets: " + strings.Join(parts, "; ")
	}
	return e
}

// noLeaderDetail says why a group with voters has no leader that this
// member knows of.
func (c *core) noLeaderDetail(live map[transport.PeerID]announcement) string {
	if !c.raftReady.Load() {
		return "starting"
	}
	fut := c.raft.Load().GetConfiguration()
	if fut.Error() != nil || len(fut.Configuration().Servers) == 0 {
		if wait := c.cfg.BootstrapDelay * time.Duration(c.cfg.Preference.Factor()); time.Since(c.started) < wait {
			return fmt.Sprintf("the group is not founded yet (a founder waits BootstrapDelay, %v, for the others)", wait)
		}
		return "the group is not founded yet, and this member does not found it (a member before it, or one with state, is heard)"
	}
	voters, alive := 0, 0
	for _, s := range fut.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if p, err := transport.ParsePeerID(string(s.ID)); err == nil {
			if _, ok := live[p]; ok || p == c.self {
				alive++
			}
		}
	}
	if voters > 0 && 2*alive <= voters {
		return fmt.Sprintf("%d of the %d voters of its configuration are heard, short of a majority", alive, voters)
	}
	return fmt.Sprintf("an election is under way (%d of %d voters heard)", alive, voters)
}
