// Package groups runs a Raft group over a replicated state machine of your
// own, an rsm.StateMachine. Members find each other over the network, found
// the group or join it, forward commands to the leader, and keep the
// membership healthy on their own: nobody writes a cluster configuration.
//
// # Joining
//
// Join makes this node's transport.Network a member of the group named by a
// Key (KeyFromSecret, NewKey) that runs a machine of a given Signature.
// Members whose key, signature, HeartbeatInterval, ElectionTimeout or Tickets
// issuer differ are different groups and never meet. A nil *Config means
// every default; Config.Storage (see storage.Open) makes the membership and
// state survive a restart, Config.Secret seals every message of the group,
// and Config.Preference says whether this node may lead. When().Online resolves
// once a leader is known and this member has caught up with it.
//
// # Commands and queries
//
// Execute (ExecuteMany for an unbroken run) returns once a command is
// committed and applied on the leader, or on this member where it commits by
// itself (a follower of three voters); ExecuteApplied once this member has
// applied it too; Feed once the leader has assigned an index. A machine that
// implements rsm.Replier answers each command: ExecuteReply[A] and
// ExecuteApplied[A] decode the answer into the type A the caller names. A follower forwards commands to the leader.
// Each command applies exactly once, and commands issued one after another
// apply in that order. A command's error says what is known: ErrOffline and
// ErrNotApplied mean it did not apply and may be issued again;
// ErrOutcomeUnknown that it may apply, once (Outcome tells later);
// ErrNotAppliedHere that it applied but this member has not yet.
//
// Query reads the machine: Weak reads this member's state, Strong is
// linearizable (it sees every command that completed before it began).
//
// # Leaving
//
// Close stops the member; a leader hands leadership over first. A member
// with in-memory storage then removes itself from the group, and one with
// durable storage stays in it, expected back. Leave removes a member for
// good.
package groups
