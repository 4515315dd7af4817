package storage

import (
	"testing"

	"github.com/hashicorp/raft"
)

// hashicorp/raft leaves a
// gap in a non-monotonic log store (this one does not implement
// raft.MonotonicLogStore) when a follower installs a snapshot far ahead of
// a short log: installSnapshot calls compactLogs, which deletes nothing
// while the log's last index is <= TrailingLogs (10240 by default), and
// the next AppendEntries (PrevLogEntry = the snapshot's index) stores the
// entries after the snapshot. NewRaft reads only the entries after the
// latest snapshot, so the node starts fine; CheckConfigurations, which its
// doc says to call before raft.NewRaft and which "reads the group's log as
// NewRaft does", calls that healthy log corrupt.
func TestCheckConfigurationsAcceptsRaftsOwnGap(t *testing.T) {
	db, _ := memDB(t, nil)
	st := stores(t, db, groupID(7))
	if err := st.Log.StoreLogs(mkLogs(1, 5)); err != nil {
		t.Fatal(err)
	}
	id := "a"
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter}}}
	sink, err := st.Snapshots.Create(raft.SnapshotVersionMax, 100, 3, conf, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Log.StoreLogs(mkLogs(101, 105)); err != nil {
		t.Fatal(err)
	}
	if err := st.Log.(ConfigurationChecker).CheckConfigurations(); err != nil {
		t.Fatalf("a log raft itself leaves after installing a snapshot is called corrupt: %v", err)
	}
}
