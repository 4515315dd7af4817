package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics runs the example with -once and reads the series it printed:
// the node's and the group's, with figures that moved.
func TestMetrics(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, "127.0.0.1:0", true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "serving metrics at http://127.0.0.1:") {
		t.Fatalf("no loopback address printed:\n%s", out.String())
	}
	// name{labels} value, one series a line; one node and one group, so
	// one series a name.
	got := map[string]float64{}
	for line := range strings.Lines(out.String()) {
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		name, _, labelled := strings.Cut(series, "{")
		if !ok || !labelled || !strings.HasPrefix(name, "mosaik_") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got[name] = v
	}
	for name, least := range map[string]float64{
		"mosaik_transport_sent_bytes_total":          1,
		"mosaik_transport_group_sent_messages_total": 0,
		"mosaik_group_elections_total":               1,
		"mosaik_group_leader_changes_total":          1,
		"mosaik_group_appended_commands_total":       3,
		"mosaik_group_commit_index":                  3,
		"mosaik_group_is_leader":                     1,
		"mosaik_group_voters":                        1,
	} {
		v, ok := got[name]
		if !ok || v < least {
			t.Errorf("%s = %v (present %v), want at least %v", name, v, ok, least)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9464", ":9464", "192.0.2.1:80"} {
		if err := run(context.Background(), &bytes.Buffer{}, addr, true); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
}
