package transport

import (
	"errors"
	"fmt"
	"math"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/raftconf"
)

// checkRPC refuses what Raft must never see from sender from: an RPC that
// names another node as its sender (Raft believes the names inside an RPC,
// the transport knows who sealed it), and configuration bytes that do not
// decode (hashicorp/raft panics on them, and a durable node would panic
// again on every restart).
func checkRPC(from PeerID, cmd any) error {
	self := from.String()
	// Every name an RPC carries must be its sender's: Raft reads the leader
	// or candidate from the header or, when the header lacks it, from the
	// older fields.
	same := func(what string, b []byte) error {
		if len(b) != 0 && string(b) != self {
			return fmt.Errorf("%s names %q, but %s sent it", what, clip(b), from.Short())
		}
		return nil
	}
	header := func(h raft.RPCHeader) error {
		return errors.Join(same("header id", h.ID), same("header address", h.Addr))
	}
	switch r := cmd.(type) {
	case *raft.AppendEntriesRequest:
		if err := errors.Join(header(r.RPCHeader), same("leader", r.Leader)); err != nil {
			return err
		}
		for _, e := range r.Entries {
			if e == nil {
				return errors.New("nil log entry")
			}
			switch e.Type {
			case raft.LogCommand, raft.LogNoop, raft.LogBarrier:
			case raft.LogConfiguration:
				if err := checkConfiguration(e.Data); err != nil {
					return fmt.Errorf("entry %d: %w", e.Index, err)
				}
			default:
				// Raft panics on a type it does not know once it is
				// committed, and the old peer-list types would replace the
				// configuration unchecked: this group never writes them.
				return fmt.Errorf("entry %d: log type %d is not accepted", e.Index, e.Type)
			}
		}
	case *raft.RequestVoteRequest:
		return errors.Join(header(r.RPCHeader), same("candidate", r.Candidate))
	case *raft.RequestPreVoteRequest:
		return header(r.RPCHeader)
	case *raft.TimeoutNowRequest:
		return header(r.RPCHeader)
	case *raft.InstallSnapshotRequest:
		if err := errors.Join(header(r.RPCHeader), same("leader", r.Leader)); err != nil {
			return err
		}
		return checkSnapshotRequest(r)
	}
	return nil
}

// maxSnapshotSize is more than any snapshot this SDK writes: a larger size
// is a lie.
const maxSnapshotSize = 1 << 40

// checkSnapshotRequest refuses an InstallSnapshot that Raft would panic on
// or that would leave it in a state it cannot come back from: Raft decodes
// the configuration before it reads a byte, takes the indexes and terms as
// they come, and counts the bytes against Size.
func checkSnapshotRequest(r *raft.InstallSnapshotRequest) error {
	switch {
	case r.SnapshotVersion < 1 || r.SnapshotVersion > raft.SnapshotVersionMax:
		// Version 0 carries the old peer list in place of a configuration:
		// this group never writes it.
		return fmt.Errorf("snapshot version %d is not accepted", r.SnapshotVersion)
	case r.Term == 0 || r.LastLogIndex == 0 || r.LastLogTerm == 0:
		return fmt.Errorf("snapshot at index %d, term %d, in term %d: zero", r.LastLogIndex, r.LastLogTerm, r.Term)
	case r.Term > math.MaxInt64 || r.LastLogIndex > math.MaxInt64:
		// Raft adds to them and converts them: no real log gets there.
		return fmt.Errorf("snapshot at index %d in term %d: out of range", r.LastLogIndex, r.Term)
	case r.LastLogTerm > r.Term:
		return fmt.Errorf("snapshot of term %d sent in term %d", r.LastLogTerm, r.Term)
	case r.ConfigurationIndex == 0 || r.ConfigurationIndex > r.LastLogIndex:
		return fmt.Errorf("snapshot at index %d has its configuration at index %d", r.LastLogIndex, r.ConfigurationIndex)
	case r.Size < 0 || r.Size > maxSnapshotSize:
		return fmt.Errorf("snapshot size %d is out of range", r.Size)
	}
	return checkConfiguration(r.Configuration)
}

// checkConfiguration decodes a Raft configuration as Raft will, without
// panicking, and checks what Raft's own check does and more: each server a
// PeerID whose address is its id, named once, with a known suffrage, and at
// least one voter (a configuration without one can never elect a leader).
func checkConfiguration(b []byte) error {
	c, err := raftconf.Decode(b)
	if err != nil {
		return err
	}
	if len(c.Servers) == 0 {
		return errors.New("configuration names no server")
	}
	seen := map[raft.ServerID]bool{}
	voters := 0
	for _, s := range c.Servers {
		if _, err := ParsePeerID(string(s.ID)); err != nil || string(s.Address) != string(s.ID) {
			return fmt.Errorf("configuration names server %q at %q: not a peer id at its own address", clip([]byte(s.ID)), clip([]byte(s.Address)))
		}
		if seen[s.ID] {
			return fmt.Errorf("configuration names server %q twice", clip([]byte(s.ID)))
		}
		seen[s.ID] = true
		switch s.Suffrage {
		case raft.Voter:
			voters++
		case raft.Nonvoter, raft.Staging:
		default:
			return fmt.Errorf("configuration gives server %q suffrage %d", clip([]byte(s.ID)), s.Suffrage)
		}
	}
	if voters == 0 {
		return errors.New("configuration names no voter")
	}
	return nil
}

func clip(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
