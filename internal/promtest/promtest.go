// Package promtest reads metrics back from a Prometheus registry in tests.
package promtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sum adds up the counters and gauges named name whose labels include every
// pair in labels (name, value, name, value...).
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	for _, m := range series(t, g, func(n string) bool { return n == name }, labels) {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// Series counts the series whose name starts with prefix and whose labels
// include every pair in labels.
func Series(t testing.TB, g prometheus.Gatherer, prefix string, labels ...string) int {
	t.Helper()
	return len(series(t, g, func(n string) bool { return strings.HasPrefix(n, prefix) }, labels))
}

func series(t testing.TB, g prometheus.Gatherer, name func(string) bool, labels []string) []*dto.Metric {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []*dto.Metric
	for _, f := range fams {
		if !name(f.GetName()) {
			continue
		}
		for _, m := range f.GetMetric() {
			if has(m, labels) {
				out = append(out, m)
			}
		}
	}
	return out
}

func has(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(p *dto.LabelPair) bool {
			return p.GetName() == labels[i] && p.GetValue() == labels[i+1]
		}) {
			return false
		}
	}
	return true
}
