package storage

import (
	"slices"
	"strings"
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

// TestCheckConfigurationsAfterSnapshot: NewRaft reads every entry from
// the newest snapshot's index + 1 to the last, panics on one missing, and
// decodes the configuration entries among them; it never reads what is
// below the snapshot. The check does the same, and checks the checksum of
// every entry.
func TestCheckConfigurationsAfterSnapshot(t *testing.T) {
	badConf := func(i uint64) *raft.Log {
		l := mkLog(i)
		l.Type, l.Data = raft.LogConfiguration, []byte{0xc1, 0xff, 0x00}
		return l
	}
	for _, tc := range []struct {
		name   string
		logs   []*raft.Log
		broken uint64 // an entry whose stored bytes are damaged
		want   string // "" for no error
	}{
		{"contiguous after the snapshot", slices.Concat(mkLogs(1, 5), mkLogs(101, 105)), 0, ""},
		{"log ends below the snapshot", mkLogs(1, 50), 0, ""},
		{"first entry after the snapshot missing", slices.Concat(mkLogs(1, 5), mkLogs(102, 105)), 0, "log entry 101"},
		{"hole after the snapshot", slices.Concat(mkLogs(1, 5), mkLogs(101, 102), mkLogs(104, 105)), 0, "log entry 103"},
		{"bad configuration below the snapshot", slices.Concat(mkLogs(1, 5), []*raft.Log{badConf(6)}, mkLogs(101, 103)), 0, ""},
		{"bad configuration after the snapshot", slices.Concat(mkLogs(1, 5), mkLogs(101, 102), []*raft.Log{badConf(103)}), 0, "log entry 103"},
		{"damaged entry below the snapshot", slices.Concat(mkLogs(1, 5), mkLogs(101, 103)), 3, "log entry 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := memDB(t, nil)
			st := stores(t, db, groupID(7))
			if err := st.Log.StoreLogs(tc.logs); err != nil {
				t.Fatal(err)
			}
			conf := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a", Suffrage: raft.Voter}}}
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
			if tc.broken != 0 {
				corruptKey(t, db, logKey(st.Log.(*view).logLo, tc.broken), func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
			}
			for _, check := range []func() error{
				st.Log.(ConfigurationChecker).CheckConfigurations,
				db.ReadGroup(groupID(7)).CheckConfigurations,
				func() error {
					st.Release()
					st2, err := db.Stores(groupID(7))
					if err == nil {
						st = st2
					}
					return err
				},
			} {
				err := check()
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("got %v, want no error", err)
				case tc.want != "" && (!isCorrupt(err) || !strings.Contains(err.Error(), tc.want+":") || !strings.Contains(err.Error(), shortGroup(groupID(7)))):
					t.Fatalf("got %v, want ErrCorrupt naming %s", err, tc.want)
				}
			}
		})
	}
}
