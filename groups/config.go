package groups

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"time"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

type prefKind uint8

const (
	prefNormal prefKind = 1 + iota
	prefReluctant
	prefObserver
)

// Preference is a node's wish about leading its group. It is per node and
// not part of the group id. The zero value means Normal.
type Preference struct {
	kind   prefKind
	factor uint32
}

var (
	// Normal members vote and may lead.
	Normal = Preference{kind: prefNormal}
	// Observer members replicate the log but never vote, never lead and never
	// count toward a quorum.
	Observer = Preference{kind: prefObserver}
)

// Reluctant members vote and may lead, but their election and heartbeat
// timeouts and bootstrap delay are multiplied by factor, and a reluctant
// leader hands leadership to a caught-up Normal voter when one exists.
func Reluctant(factor uint32) Preference {
	return Preference{kind: prefReluctant, factor: max(factor, 1)}
}

// IsObserver reports whether p is Observer.
func (p Preference) IsObserver() bool { return p.kind == prefObserver }

// IsReluctant reports whether p is Reluctant.
func (p Preference) IsReluctant() bool { return p.kind == prefReluctant }

// Factor is the timeout multiplier: 1 unless Reluctant.
func (p Preference) Factor() uint32 {
	if p.kind == prefReluctant {
		return p.factor
	}
	return 1
}

func (p Preference) String() string {
	switch p.kind {
	case prefReluctant:
		return fmt.Sprintf("reluctant(%d)", p.factor)
	case prefObserver:
		return "observer"
	default:
		return "normal"
	}
}

func (p Preference) normalized() Preference {
	if p.kind == 0 {
		return Normal
	}
	return p
}

// Consistency says how fresh a query must be.
type Consistency int

const (
	// Weak reads the local state: fast, possibly behind the leader.
	Weak Consistency = 1 + iota
	// Strong is linearizable: it sees every command committed before the
	// query started.
	Strong
)

// Config configures a group member. A nil *Config means all defaults; a zero
// field means that field's default. HeartbeatInterval and ElectionTimeout
// are part of the group id: members must agree on them.
type Config struct {
	// HeartbeatInterval paces what members tell each other outside Raft:
	// announcements go every 5 × HeartbeatInterval, and the leader waits up
	// to half of it to gather a batch. Raft's own heartbeats go every
	// ElectionTimeout / 20 (hashicorp/raft ties the two). Default
	// ElectionTimeout / 10, or 100ms if both are zero.
	HeartbeatInterval time.Duration
	// ElectionTimeout is the longest a follower waits without hearing from
	// a leader before it calls an election, and the longest a candidate
	// waits for votes, as in etcd and the Raft paper. Each wait is drawn at
	// random between half of it and all of it, so that followers do not
	// all call at once. A leader that cannot reach a majority for half of
	// it steps down. Default 10 × HeartbeatInterval, or 1s if both are zero.
	ElectionTimeout time.Duration
	// BootstrapDelay is how long a new member listens for an existing group
	// before the lowest PeerID among those present founds one. Default 3s.
	BootstrapDelay time.Duration
	// DeadMemberTimeout is how long a member may stay silent before the
	// leader removes it. Default 30s.
	DeadMemberTimeout time.Duration
	// ForwardTimeout bounds how long a command waits for a leader, and each
	// attempt to hand it to one. Default 5s.
	ForwardTimeout time.Duration
	// QueryTimeout bounds the wait of Sync and of a Strong query when ctx has
	// no deadline. Default 5s.
	QueryTimeout time.Duration
	// Preference is this node's leadership preference. Default Normal.
	Preference Preference
	// Secret seals every message of the group: only members that hold it
	// can join, read or write. The zero Secret means the network's default
	// (transport.WithSecret), and without one the group is open: anyone on
	// the NATS server can join it. It is not part of the group id: a member
	// with another secret hears the group but can open nothing, and says so
	// in its log.
	Secret transport.Secret
	// Tickets, if set, admits only members holding a ticket from its issuer
	// (see Tickets); the issuer's key is part of the group id.
	Tickets *Tickets
	// Ticket is this member's ticket, for a group with Tickets.
	Ticket string
	// Storage keeps the log and snapshots. Default storage.Memory().
	Storage storage.Provider
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one, for machines that implement rsm.Snapshotter.
	// Default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often a member checks whether SnapshotThreshold
	// entries have accumulated since its last snapshot. Default 5s.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// a briefly lagging follower catches up without one. Default 10240.
	TrailingLogs uint64
	// SnapshotLogBytes makes a member also take a snapshot when the
	// commands applied since its last one hold at least this many bytes
	// and half that snapshot's size, however few entries carried them;
	// the log after that snapshot keeps about this many bytes (at most
	// TrailingLogs entries). A newcomer then installs the state rather than
	// replaying a long log of large entries. Default 1 MiB.
	SnapshotLogBytes uint64
	// Logger receives the group's logs. Default: the network's logger.
	Logger *slog.Logger
	// Labels describe the group to people, e.g. in the inspect tool; they
	// are not part of its identity. The collections set kind, name and
	// their type names here.
	Labels map[string]string
}

// Validate reports every problem of c at once, naming its fields, as Join
// would; a nil *Config is valid.
func (c *Config) Validate() error {
	_, err := c.resolve(nil)
	return err
}

// resolve returns a copy with defaults filled in, or every problem at once.
func (c *Config) resolve(fallback *slog.Logger) (Config, error) {
	var r Config
	if c != nil {
		r = *c
		r.Labels = maps.Clone(c.Labels)
	}
	var errs []error
	neg := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("groups: Config.%s is negative (%v)", name, d))
		}
	}
	neg("HeartbeatInterval", r.HeartbeatInterval)
	neg("ElectionTimeout", r.ElectionTimeout)
	neg("BootstrapDelay", r.BootstrapDelay)
	neg("DeadMemberTimeout", r.DeadMemberTimeout)
	neg("ForwardTimeout", r.ForwardTimeout)
	neg("QueryTimeout", r.QueryTimeout)
	neg("SnapshotInterval", r.SnapshotInterval)
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	// One timing given, the other follows it.
	switch {
	case r.HeartbeatInterval == 0 && r.ElectionTimeout > 0:
		r.HeartbeatInterval = r.ElectionTimeout / 10
	case r.ElectionTimeout == 0 && r.HeartbeatInterval > 0:
		r.ElectionTimeout = 10 * r.HeartbeatInterval
	}
	def(&r.HeartbeatInterval, 100*time.Millisecond)
	def(&r.ElectionTimeout, time.Second)
	def(&r.BootstrapDelay, 3*time.Second)
	def(&r.DeadMemberTimeout, 30*time.Second)
	def(&r.ForwardTimeout, 5*time.Second)
	def(&r.QueryTimeout, 5*time.Second)
	def(&r.SnapshotInterval, 5*time.Second)
	if r.HeartbeatInterval > 0 && r.HeartbeatInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("groups: Config.HeartbeatInterval %v is below 1ms", r.HeartbeatInterval))
	}
	if r.ElectionTimeout > 0 && r.ElectionTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("groups: Config.ElectionTimeout %v is below 5ms", r.ElectionTimeout))
	}
	if r.DeadMemberTimeout > 0 && r.DeadMemberTimeout < 2*r.announceInterval() {
		errs = append(errs, fmt.Errorf("groups: Config.DeadMemberTimeout %v is shorter than two announcements (%v: 10 × Config.HeartbeatInterval)", r.DeadMemberTimeout, 2*r.announceInterval()))
	}
	if err := r.Tickets.validate(); err != nil {
		errs = append(errs, err)
	}
	r.Preference = r.Preference.normalized()
	if r.Storage == nil {
		r.Storage = storage.Memory()
	}
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = 8192
	}
	if r.TrailingLogs == 0 {
		r.TrailingLogs = 10240
	}
	if r.SnapshotLogBytes == 0 {
		r.SnapshotLogBytes = 1 << 20
	}
	if r.Logger == nil {
		r.Logger = fallback
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r, errors.Join(errs...)
}

// announceInterval is how often a member announces itself.
func (c *Config) announceInterval() time.Duration {
	return max(5*c.HeartbeatInterval, 20*time.Millisecond)
}

// reactInterval is the least time between two passes of a leader's
// membership loop: a newcomer's announcement wakes it at once, but a flood
// of them gets at most one pass per reactInterval.
func (c *Config) reactInterval() time.Duration {
	return max(c.HeartbeatInterval/4, 5*time.Millisecond)
}

// liveWindow is how recently a member must have been heard to count as
// present for bootstrap decisions.
func (c *Config) liveWindow() time.Duration { return 4 * c.announceInterval() }
