package groups

import (
	"strings"
	"testing"
	"time"
)

// Timings as etcd users write them: the leader beats every 50 ms, and a
// follower calls an election at most 300 ms after it last heard a leader.
// Raft must run with that, and no rule of Raft's the user never set may refuse it.
func TestEtcdStyleTimings(t *testing.T) {
	c := newCluster(t)
	cfg := &Config{HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, BootstrapDelay: 300 * time.Millisecond}
	nd, err := c.join(cfg)
	if err != nil {
		t.Fatalf("Join with HeartbeatInterval 50ms, ElectionTimeout 300ms: %v", err)
	}
	online(t, nd)
	rc := nd.g.core.raftConfig(false)
	// Raft waits between its setting and twice it: a follower calls an
	// election between 150 and 300 ms after it last heard the leader.
	if rc.HeartbeatTimeout != 150*time.Millisecond || rc.ElectionTimeout != 150*time.Millisecond {
		t.Fatalf("raft runs with heartbeat timeout %v, election timeout %v; want both 150ms", rc.HeartbeatTimeout, rc.ElectionTimeout)
	}
}

// Cross-field rules are checked by Config, naming the user's own fields;
// a field left zero follows the other.
func TestConfigTimings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		hb, et time.Duration
		err    string
	}{
		{"defaults", Config{}, 100 * time.Millisecond, time.Second, ""},
		{"etcd style", Config{HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}, 50 * time.Millisecond, 300 * time.Millisecond, ""},
		{"heartbeat only", Config{HeartbeatInterval: 500 * time.Millisecond}, 500 * time.Millisecond, 5 * time.Second, ""},
		{"election only", Config{ElectionTimeout: 300 * time.Millisecond}, 30 * time.Millisecond, 300 * time.Millisecond, ""},
		{"heartbeat above the election timeout", Config{HeartbeatInterval: 500 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}, 500 * time.Millisecond, 300 * time.Millisecond, ""},
		{"dead members sooner than two announcements", Config{HeartbeatInterval: time.Second, DeadMemberTimeout: 5 * time.Second}, 0, 0, "Config.DeadMemberTimeout 5s is shorter than two announcements (10s: 10 × Config.HeartbeatInterval)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			r, rerr := tc.cfg.resolve(nil)
			if (err == nil) != (rerr == nil) {
				t.Fatalf("Validate %v, resolve %v: they disagree", err, rerr)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Validate: %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "Heartbeat Timeout") {
					t.Fatalf("Validate names a Raft setting the user never set: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.HeartbeatInterval != tc.hb || r.ElectionTimeout != tc.et {
				t.Fatalf("resolved to heartbeat %v, election %v; want %v, %v", r.HeartbeatInterval, r.ElectionTimeout, tc.hb, tc.et)
			}
		})
	}
}
