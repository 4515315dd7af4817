package groups

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// raftLog hands hashicorp/raft's log to the group's slog.Logger at the
// level Raft chose, so a Warn-level handler sees "heartbeat timeout
// reached". Raft's Info lines (state changes, pipelines starting) go to
// Debug: a node with many groups would otherwise log a line per group per
// election. Raft's arguments sit in a "raft" group so they never collide
// with the group's own attributes. A warning or error Raft repeats (a dead
// peer fails every heartbeat) is logged once per raftLogEvery per message.
type raftLog struct {
	l     *slog.Logger
	name  string
	args  []any
	limit *raftLogLimit
}

const raftLogEvery = 10 * time.Second

// raftLogLimit remembers when each warning message was last logged. Raft's
// messages are constant strings, so the map stays small; it is bounded all
// the same.
type raftLogLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *raftLogLimit) allow(msg string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[msg]; ok && now.Sub(t) < raftLogEvery {
		return false
	}
	if len(r.last) >= 256 {
		clear(r.last)
	}
	r.last[msg] = now
	return true
}

func raftLogger(l *slog.Logger) hclog.Logger {
	return &raftLog{l: l, name: "raft", limit: &raftLogLimit{last: map[string]time.Time{}}}
}

// raftRoutine are warnings Raft logs in normal operation here, which go
// to Debug: before the group is founded a member's election timer finds no
// configuration; a member being added or catching up lacks the entries the
// leader probes with, and the leader steps back.
var raftRoutine = map[string]bool{
	"no known peers, aborting election":          true,
	"failed to get previous log":                 true,
	"appendEntries rejected, sending older logs": true,
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug, hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (r *raftLog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := slogLevel(level)
	if lv >= slog.LevelWarn && raftRoutine[msg] {
		lv = slog.LevelDebug
	}
	if !r.l.Enabled(context.Background(), lv) {
		return
	}
	if lv >= slog.LevelWarn && !r.limit.allow(msg, time.Now()) {
		return
	}
	all := append(append([]any{}, r.args...), args...)
	r.l.Log(context.Background(), lv, r.name+": "+msg, slog.Group("raft", all...))
}

func (r *raftLog) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLog) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLog) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLog) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLog) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }

func (r *raftLog) enabled(level hclog.Level) bool {
	return r.l.Enabled(context.Background(), slogLevel(level))
}

func (r *raftLog) IsTrace() bool { return r.enabled(hclog.Trace) }
func (r *raftLog) IsDebug() bool { return r.enabled(hclog.Debug) }
func (r *raftLog) IsInfo() bool  { return r.enabled(hclog.Info) }
func (r *raftLog) IsWarn() bool  { return r.enabled(hclog.Warn) }
func (r *raftLog) IsError() bool { return r.enabled(hclog.Error) }

func (r *raftLog) ImpliedArgs() []any { return r.args }

func (r *raftLog) With(args ...any) hclog.Logger {
	c := *r
	c.args = append(append([]any{}, r.args...), args...)
	return &c
}

func (r *raftLog) Name() string { return r.name }

func (r *raftLog) Named(name string) hclog.Logger {
	c := *r
	c.name = r.name + "." + name
	return &c
}

func (r *raftLog) ResetNamed(name string) hclog.Logger {
	c := *r
	c.name = name
	return &c
}

// SetLevel and GetLevel: the slog handler decides what is logged.
func (r *raftLog) SetLevel(hclog.Level) {}

func (r *raftLog) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Warn, hclog.Error} {
		if r.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

func (r *raftLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

func (r *raftLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return raftLogWriter{r} }

type raftLogWriter struct{ r *raftLog }

func (w raftLogWriter) Write(p []byte) (int, error) {
	w.r.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
