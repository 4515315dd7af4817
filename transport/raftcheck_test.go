package transport

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestCheckRPC: Raft never gets an RPC that names another sender, nor
// configuration bytes it would panic on.
func TestCheckRPC(t *testing.T) {
	me, other := NewPeerID(), NewPeerID()
	hdr := func(p PeerID) raft.RPCHeader {
		return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(p.String()), Addr: []byte(p.String())}
	}
	server := func(p PeerID, s raft.ServerSuffrage) raft.Server {
		return raft.Server{Suffrage: s, ID: raft.ServerID(p.String()), Address: raft.ServerAddress(p.String())}
	}
	conf := func(servers ...raft.Server) []byte {
		return raft.EncodeConfiguration(raft.Configuration{Servers: servers})
	}
	good := conf(server(me, raft.Voter), server(other, raft.Nonvoter))
	cfgEntry := func(data []byte) []*raft.Log { return []*raft.Log{{Index: 7, Type: raft.LogConfiguration, Data: data}} }
	for _, c := range []struct {
		name string
		cmd  any
		ok   bool
	}{
		{"append as itself", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Term: 1, Entries: cfgEntry(good)}, true},
		{"append as another", &raft.AppendEntriesRequest{RPCHeader: hdr(other), Term: 1}, false},
		{"append with another's address", &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte(me.String()), Addr: []byte(other.String())}}, false},
		{"old leader field as another", &raft.AppendEntriesRequest{Term: 1, Leader: []byte(other.String())}, false},
		{"old leader field as itself", &raft.AppendEntriesRequest{Term: 1, Leader: []byte(me.String())}, true},
		{"configuration entry 0xff", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry([]byte{0xff})}, false},
		{"configuration entry 0xc1", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry([]byte{0xc1})}, false},
		{"empty configuration entry", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(nil)}, false},
		{"configuration without servers", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(raft.EncodeConfiguration(raft.Configuration{}))}, false},
		{"duplicate server", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(conf(server(me, raft.Voter), server(me, raft.Nonvoter)))}, false},
		{"no voter", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(conf(server(me, raft.Nonvoter)))}, false},
		{"unknown suffrage", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(conf(server(me, raft.Voter), server(other, 9)))}, false},
		{"server not a peer id", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(conf(raft.Server{ID: "a", Address: "a"}))}, false},
		{"server at another address", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: cfgEntry(conf(raft.Server{ID: raft.ServerID(me.String()), Address: raft.ServerAddress(other.String())}))}, false},
		{"unknown log type", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: []*raft.Log{{Index: 7, Type: 99}}}, false},
		{"old add-peer entry", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: []*raft.Log{{Index: 7, Type: raft.LogAddPeerDeprecated, Data: []byte{1}}}}, false},
		{"nil entry", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: []*raft.Log{nil}}, false},
		{"commands, no-ops, barriers", &raft.AppendEntriesRequest{RPCHeader: hdr(me), Entries: []*raft.Log{{Index: 7, Type: raft.LogCommand}, {Index: 8, Type: raft.LogNoop}, {Index: 9, Type: raft.LogBarrier}}}, true},
		{"leader field as another beside an id", &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte(me.String())}, Leader: []byte(other.String())}, false},
		{"candidate field as another beside an id", &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte(me.String())}, Candidate: []byte(other.String())}, false},
		{"vote as another", &raft.RequestVoteRequest{RPCHeader: hdr(other), Term: 2}, false},
		{"vote candidate field as another", &raft.RequestVoteRequest{Term: 2, Candidate: []byte(other.String())}, false},
		{"vote as itself", &raft.RequestVoteRequest{RPCHeader: hdr(me), Term: 2}, true},
		{"pre-vote as another", &raft.RequestPreVoteRequest{RPCHeader: hdr(other)}, false},
		{"timeout-now as another", &raft.TimeoutNowRequest{RPCHeader: hdr(other)}, false},
		{"timeout-now as itself", &raft.TimeoutNowRequest{RPCHeader: hdr(me)}, true},
		{"snapshot as another", &raft.InstallSnapshotRequest{RPCHeader: hdr(other), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good}, false},
		{"snapshot without configuration", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1}, false},
		{"snapshot with junk configuration", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: []byte{0xc1}}, false},
		{"snapshot as itself", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good}, true},
		{"snapshot version 0", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good}, false},
		{"snapshot version 2", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 2, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good}, false},
		{"snapshot configuration past its index", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 6, Configuration: good}, false},
		{"snapshot of a later term", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 2, ConfigurationIndex: 1, Configuration: good}, false},
		{"snapshot of negative size", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good, Size: -1}, false},
		{"snapshot of absurd size", &raft.InstallSnapshotRequest{RPCHeader: hdr(me), SnapshotVersion: 1, Term: 1, LastLogIndex: 5, LastLogTerm: 1, ConfigurationIndex: 1, Configuration: good, Size: maxSnapshotSize + 1}, false},
	} {
		if err := checkRPC(me, c.cmd); (err == nil) != c.ok {
			t.Errorf("%s: checkRPC = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// FuzzCheckConfiguration: whatever checkConfiguration lets through, Raft
// decodes without panicking into a configuration with a voter.
func FuzzCheckConfiguration(f *testing.F) {
	p := NewPeerID().String()
	f.Add(raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(p), Address: raft.ServerAddress(p)}}}))
	f.Add([]byte{0xc1})
	f.Add([]byte{})
	f.Add([]byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkConfiguration(b) != nil {
			return
		}
		c := raft.DecodeConfiguration(b) // panics if the check let junk through
		voters := 0
		for _, s := range c.Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		if voters == 0 {
			t.Fatalf("accepted a configuration without a voter: %+v", c)
		}
	})
}
