package groups

import (
	"errors"
	"fmt"
)

var (
	// ErrNotApplied means a command did not apply and never will: it is
	// safe to issue it again. ErrOffline and ErrTooLarge match it too.
	ErrNotApplied = errors.New("groups: not applied")
	// ErrOffline means no leader is reachable now; the command was not
	// applied. Retry later. It matches ErrNotApplied.
	ErrOffline error = &notApplied{"groups: offline"}
	// ErrNoCommands is returned by ExecuteMany and ExecuteApplied without
	// commands.
	ErrNoCommands = errors.New("groups: no commands")
	// ErrReplyType means a command applied but its machine's answer does not
	// decode into the type the caller asked for (see ExecuteReply): the
	// command is not to be issued again.
	ErrReplyType = errors.New("groups: reply of another type")
	// ErrClosed is returned by a closed group, or one whose network closed.
	ErrClosed = errors.New("groups: closed")
	// ErrTooLarge is returned for a command or batch over the limits; nothing
	// applied. It matches ErrNotApplied.
	ErrTooLarge error = &notApplied{"groups: too large"}
	// ErrOutcomeUnknown means this member cannot tell whether a command
	// applied: the wait ended after it was sent. The error is then an
	// *UnknownOutcomeError, and Outcome tells what became of the write.
	// Other errors matching it (ErrSessionExpired, a repeat too old to
	// recall) are final: it applied at most once, and nobody can tell.
	ErrOutcomeUnknown = errors.New("groups: outcome unknown")
	// ErrNotLeader is reported by a member asked to do what only the leader
	// does; commands and queries retry elsewhere on their own.
	ErrNotLeader = errors.New("groups: not leader")
	// ErrNotAppliedHere means commands committed (they applied, at the
	// indexes returned with it) but this member had not applied them yet
	// when the wait ended; it will once it catches up.
	ErrNotAppliedHere = errors.New("groups: committed, not yet applied on this member")
	// ErrBusy means a member had too many requests of this kind in flight
	// and refused one; nothing was done. Retry later.
	ErrBusy = errors.New("groups: busy")
	// ErrSessionExpired means the group forgot the submitting member's
	// session (it keeps at most MaxSessions, evicting the least recently
	// used) while a batch was being retried: the batch may or may not have
	// applied, once. It also matches ErrOutcomeUnknown. The member goes on
	// under a new session.
	ErrSessionExpired = fmt.Errorf("groups: session expired: %w", ErrOutcomeUnknown)
	// ErrQuorumReachable is Recover refusing while a majority of the
	// group's voters, or a leader, is still heard: the group can go on
	// without it.
	ErrQuorumReachable = errors.New("groups: a majority of the voters is reachable")
	// ErrRecoverElsewhere is Recover refusing on a member while another
	// reachable survivor is better placed to recover the group (a longer
	// log, or an equal one and a lower PeerID): recover that one.
	ErrRecoverElsewhere = errors.New("groups: another survivor should recover the group")
	// ErrNotVoter is Recover on a member that is not a voter of the group.
	ErrNotVoter = errors.New("groups: not a voter")
	// ErrNotMember is RemoveMember for a peer not in the configuration.
	ErrNotMember = errors.New("groups: not a member")
	// ErrMemberAlive is RemoveMember refusing, without force, a member
	// heard within DeadMemberTimeout, or one whose removal would leave the
	// voters without a live majority.
	ErrMemberAlive = errors.New("groups: member is alive")
)

// notApplied is a sentinel that also matches ErrNotApplied.
type notApplied struct{ msg string }

func (e *notApplied) Error() string        { return e.msg }
func (e *notApplied) Is(target error) bool { return target == ErrNotApplied }

// WriteID names one call's commands as this member sent them: its session,
// the batch they went in, and their place in it. The zero value names no
// write.
type WriteID struct {
	Session [16]byte // the member's session, as the group's log names it
	Seq     uint64   // the batch's number in the session, from 1
	Part    int      // the call's place among the calls of the batch, from 0
}

func (id WriteID) String() string {
	return fmt.Sprintf("%x/%d/%d", id.Session[8:12], id.Seq, id.Part) // the session's random part
}

// UnknownOutcomeError is returned by a write whose wait ended (its context,
// or the member closing) after its commands were sent: they may apply, at
// most once. It matches ErrOutcomeUnknown and its cause. Pass Write to
// Outcome to learn what became of them.
type UnknownOutcomeError struct {
	Write WriteID
	Err   error // why the wait ended: the context's error, or ErrClosed
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("groups: outcome unknown of write %v: %v", e.Write, e.Err)
}

// Unwrap returns ErrOutcomeUnknown and the cause.
func (e *UnknownOutcomeError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.Err} }

// errRefused is a membership change the leader declined as unsafe.
var errRefused = errors.New("groups: refused")

// Wire codes let an error cross the network and still match with errors.Is.
const (
	codeNotLeader uint8 = 1 + iota
	codeClosed
	codeMalformed
	codeInternal
	codeRefused
	codeTooLarge
	codeBusy
	codeSessionExpired
)

// wireErrors are the sentinels a code stands for, in the order errorCode
// tries them.
var wireErrors = []struct {
	code uint8
	err  error
}{
	{codeNotLeader, ErrNotLeader},
	{codeClosed, ErrClosed},
	{codeRefused, errRefused},
	{codeTooLarge, ErrTooLarge},
	{codeBusy, ErrBusy},
	{codeSessionExpired, ErrSessionExpired},
}

func errorCode(err error) uint8 {
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			return w.code
		}
	}
	return codeInternal
}

// remoteError is an error a peer reported. It matches the sentinel its code
// names.
type remoteError struct {
	code uint8
	msg  string
}

func (e *remoteError) Error() string { return "groups: remote: " + e.msg }

func (e *remoteError) Is(target error) bool {
	for _, w := range wireErrors {
		if w.code == e.code {
			return errors.Is(w.err, target) // ErrSessionExpired is also ErrOutcomeUnknown
		}
	}
	return false
}

// NotOnlineReason says why a member is not online.
type NotOnlineReason int

const (
	// ReasonNoVoter: this member may not vote (an Observer) and hears no
	// member of its group that may, so nobody can lead.
	ReasonNoVoter NotOnlineReason = 1 + iota
	// ReasonMismatch: the only others this member hears opened its key
	// with other settings (signature, timings, ticket rules): another
	// group, which it never meets. Mismatches says what differs.
	ReasonMismatch
	// ReasonForeign: the only others this member hears send messages it
	// cannot open: they hold another secret, or none.
	ReasonForeign
	// ReasonNoLeader: members that may vote are there, but none leads yet:
	// the group is being founded, an election runs, or too few voters are
	// alive for a majority.
	ReasonNoLeader
	// ReasonNotAdded: a leader is known, but it has not added this member
	// to the group yet.
	ReasonNotAdded
	// ReasonCatchingUp: a leader is known and this member is in the group,
	// but it has not yet applied what the leader had committed when Online
	// first asked (or could not ask it).
	ReasonCatchingUp
)

// NotOnlineError is what When.Online returns when its context ends before
// the member came online: why, as far as this member can tell. It wraps
// the context's error, so errors.Is(err, context.DeadlineExceeded) holds.
type NotOnlineError struct {
	Reason NotOnlineReason
	// Detail says it in words, with what the member hears.
	Detail string
	// Voters and Observers count the other members of the group this
	// member hears.
	Voters, Observers int
	// Mismatches are the other groups heard under this member's key.
	Mismatches []Mismatch
	// Err is the context's error.
	Err error
}

func (e *NotOnlineError) Error() string {
	return "groups: not online: " + e.Detail + ": " + e.Err.Error()
}

func (e *NotOnlineError) Unwrap() error { return e.Err }
