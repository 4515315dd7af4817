package transport

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
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
		if r.SnapshotVersion > 0 {
			return checkConfiguration(r.Configuration)
		}
	}
	return nil
}

// checkConfiguration decodes a Raft configuration as Raft will, without
// panicking, and checks what Raft's own check does and more: each server a
// PeerID whose address is its id, named once, with a known suffrage, and at
// least one voter (a configuration without one can never elect a leader).
func checkConfiguration(b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("configuration does not decode: %v", r)
		}
	}()
	c := raft.DecodeConfiguration(b)
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
