// Package logtest captures what code under test logs through log/slog, so a
// test can wait for a record and read it.
package logtest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Log keeps every record its loggers handle, as text: the message followed
// by its attributes as key=value. It is safe for concurrent use; the zero
// value is not usable (use New).
type Log struct {
	mu    sync.Mutex
	lines []Line
}

// Line is one record.
type Line struct {
	Level slog.Level
	Text  string
}

// New returns an empty log.
func New() *Log { return &Log{} }

// Logger returns a logger that writes to l at every level.
func (l *Log) Logger() *slog.Logger { return slog.New(&handler{log: l}) }

// Find returns the records at level or above whose text contains every one
// of parts.
func (l *Log) Find(level slog.Level, parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.Level < level {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(ln.Text, p)
		}
		if all {
			out = append(out, ln.Text)
		}
	}
	return out
}

// String returns every record, one per line.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ln := range l.lines {
		b.WriteString(ln.Level.String() + " " + ln.Text + "\n")
	}
	return b.String()
}

type handler struct {
	log   *Log
	attrs string
	group string
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + h.group + a.String())
		return true
	})
	h.log.mu.Lock()
	h.log.lines = append(h.log.lines, Line{Level: r.Level, Text: b.String()})
	h.log.mu.Unlock()
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		c.attrs += " " + h.group + a.String()
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.group += name + "."
	return &c
}
