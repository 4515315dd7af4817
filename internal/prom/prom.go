// Package prom holds what the transport and groups packages share to export
// Prometheus metrics: vectors registered once per registry, and collectors
// that read their values when scraped.
package prom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace starts every metric name.
const Namespace = "mosaik"

// CounterVec returns the counter vector named Namespace_subsystem_name in
// reg: the one registered there before (several nodes and groups share a
// registry), or a new one registered now. A vector reg refuses for another
// reason (a foreign collector of the same name) still counts, unexported.
func CounterVec(reg prometheus.Registerer, subsystem, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}, labels)
	if err := reg.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
	}
	return v
}

// Child binds a counter to the child of a vector for some label values.
type Child struct {
	Vec *prometheus.CounterVec
	To  *prometheus.Counter
}

// Counters are children of counter vectors for one set of label values,
// held so counting costs one atomic add. Delete removes them from their
// vectors; a child kept after that still counts, unexported.
type Counters struct {
	vecs   []*prometheus.CounterVec
	labels []string
}

// Bind sets every child's counter to its vector's child for labels.
func Bind(labels []string, children ...Child) *Counters {
	c := &Counters{labels: labels}
	for _, ch := range children {
		*ch.To = ch.Vec.WithLabelValues(labels...)
		c.vecs = append(c.vecs, ch.Vec)
	}
	return c
}

// Delete removes the children from their vectors. It is idempotent.
func (c *Counters) Delete() {
	for _, v := range c.vecs {
		v.DeleteLabelValues(c.labels...)
	}
}

// Reading is one metric whose value is read when the registry is scraped.
type Reading struct {
	Name, Help string
	Type       prometheus.ValueType
	Read       func() float64
}

// Readings is a collector of values read at scrape time, for one set of
// constant labels (a node, or a member of a group on a node). Register it
// with Register and remove it with Unregister.
type Readings struct {
	reg      prometheus.Registerer
	descs    []*prometheus.Desc
	readings []Reading
}

// Register registers readings under subsystem, with the constant labels,
// in reg. It returns nil when reg refuses them (the same labels are
// registered already): nothing is then exported for them.
func Register(reg prometheus.Registerer, subsystem string, labels prometheus.Labels, readings ...Reading) *Readings {
	r := &Readings{reg: reg, readings: readings}
	for _, x := range readings {
		r.descs = append(r.descs, prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, x.Name), x.Help, nil, labels))
	}
	if reg.Register(r) != nil {
		return nil
	}
	return r
}

// Unregister removes the readings from their registry. It may be called on
// nil and more than once.
func (r *Readings) Unregister() {
	if r != nil {
		r.reg.Unregister(r)
	}
}

// Describe implements prometheus.Collector.
func (r *Readings) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range r.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Readings) Collect(ch chan<- prometheus.Metric) {
	for i, x := range r.readings {
		ch <- prometheus.MustNewConstMetric(r.descs[i], x.Type, x.Read())
	}
}
