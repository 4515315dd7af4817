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
		// Raft takes the leader from the header, or from the old Leader
		// field when the header names no id.
		if err := header(r.RPCHeader); err != nil {
			return err
		}
		if len(r.ID) == 0 {
			if err := same("leader", r.Leader); err != nil {
				return err
			}
		}
		for _, e := range r.Entries {
			if e != nil && e.Type == raft.LogConfiguration {
				if err := checkConfiguration(e.Data); err != nil {
					return fmt.Errorf("entry %d: %w", e.Index, err)
				}
			}
		}
	case *raft.RequestVoteRequest:
		if err := header(r.RPCHeader); err != nil || len(r.ID) != 0 {
			return err
		}
		return same("candidate", r.Candidate)
	case *raft.RequestPreVoteRequest:
		return header(r.RPCHeader)
	case *raft.TimeoutNowRequest:
		return header(r.RPCHeader)
	case *raft.InstallSnapshotRequest:
		if err := header(r.RPCHeader); err != nil {
			return err
		}
		if len(r.ID) == 0 {
			if err := same("leader", r.Leader); err != nil {
				return err
			}
		}
		if r.SnapshotVersion > 0 {
			return checkConfiguration(r.Configuration)
		}
	}
	return nil
}

// checkConfiguration decodes a Raft configuration as Raft will, without
// panicking, and checks that it names servers.
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
	for _, s := range c.Servers {
		if len(s.ID) == 0 || len(s.Address) == 0 {
			return errors.New("configuration names a server without id or address")
		}
	}
	return nil
}

func clip(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
