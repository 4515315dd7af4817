package groups

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// raftRecords is a slog.Handler that keeps what it is given at or above min.
type raftRecords struct {
	min slog.Level
	mu  sync.Mutex
	got []slog.Record
}

func (h *raftRecords) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *raftRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.got = append(h.got, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *raftRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *raftRecords) WithGroup(string) slog.Handler      { return h }

// TestRaftLogLevels: Raft's warnings reach a Warn-level handler at Warn,
// with Raft's arguments in their own group, once per interval; its Info
// lines stay at Debug.
func TestRaftLogLevels(t *testing.T) {
	h := &raftRecords{min: slog.LevelWarn}
	l := raftLogger(slog.New(h)).Named("x").With("peer", "p1")
	l.Info("entering follower state", "term", 3)
	l.Warn("heartbeat timeout reached, starting election", "last-leader-id", "abc")
	l.Warn("heartbeat timeout reached, starting election", "last-leader-id", "abc")
	l.Warn("no known peers, aborting election") // routine before founding: Debug
	l.Warn("failed to get previous log", "previous-index", 7)
	l.Error("failed to heartbeat to", "peer", "p2")
	if len(h.got) != 2 {
		t.Fatalf("got %d raftRecords, want the warning once and the error", len(h.got))
	}
	w := h.got[0]
	if w.Level != slog.LevelWarn || w.Message != "raft.x: heartbeat timeout reached, starting election" {
		t.Fatalf("warning logged as %v %q", w.Level, w.Message)
	}
	attrs := map[string]string{}
	w.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindGroup {
			for _, g := range a.Value.Group() {
				attrs[a.Key+"."+g.Key] = g.Value.String()
			}
		}
		return true
	})
	if attrs["raft.peer"] != "p1" || attrs["raft.last-leader-id"] != "abc" {
		t.Fatalf("warning attributes %v", attrs)
	}
	if h.got[1].Level != slog.LevelError {
		t.Fatalf("error logged at %v", h.got[1].Level)
	}
	if !l.IsWarn() || l.IsInfo() {
		t.Fatalf("IsWarn %v IsInfo %v under a Warn handler", l.IsWarn(), l.IsInfo())
	}
}
