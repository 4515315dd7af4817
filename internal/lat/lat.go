// Package lat is a temporary latency probe for profiling issue 15: it
// records, for one operation at a time (concurrency 1), the first time
// each step happens on each role, and summarises the medians.
package lat

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Roles.
const (
	Leader = iota
	Writer
	Other
	nRoles
)

var roleNames = [nRoles]string{"L", "W", "O"}

const maxSteps = 64

var (
	on      atomic.Bool
	epoch   = time.Now()
	slots   [maxSteps][nRoles]atomic.Int64
	names   [maxSteps]string
	nameMu  sync.Mutex
	nsteps  atomic.Int32
	leader  atomic.Value // string
	writer  atomic.Value // string
	samples [][maxSteps][nRoles]int64
)

func now() int64 { return int64(time.Since(epoch)) + 1 }

// Step registers a step name and returns its id.
func Step(name string) int {
	nameMu.Lock()
	defer nameMu.Unlock()
	i := int(nsteps.Add(1)) - 1
	names[i] = name
	return i
}

// SetRoles names the leader and the writer by their peer id strings.
func SetRoles(l, w string) { leader.Store(l); writer.Store(w) }

// RoleOf returns the role of a peer id string.
func RoleOf(id string) int {
	if l, _ := leader.Load().(string); l == id {
		return Leader
	}
	if w, _ := writer.Load().(string); w == id {
		return Writer
	}
	return Other
}

// On reports whether an operation is being recorded.
func On() bool { return on.Load() }

// Mark records the first time step happens on role in this operation.
func Mark(step, role int) {
	if on.Load() {
		slots[step][role].CompareAndSwap(0, now())
	}
}

// MarkID is Mark with the role of a peer id string.
func MarkID(step int, id string) {
	if on.Load() {
		slots[step][RoleOf(id)].CompareAndSwap(0, now())
	}
}

// Seen reports whether step happened on role in this operation.
func Seen(step, role int) bool { return slots[step][role].Load() != 0 }

// Begin starts recording an operation.
func Begin() {
	for i := range slots {
		for r := range slots[i] {
			slots[i][r].Store(0)
		}
	}
	slots[0][Writer].Store(now())
	on.Store(true)
}

// End stops recording and keeps the sample.
func End() {
	slots[1][Writer].CompareAndSwap(0, now())
	on.Store(false)
	var s [maxSteps][nRoles]int64
	for i := range slots {
		for r := range slots[i] {
			s[i][r] = slots[i][r].Load()
		}
	}
	samples = append(samples, s)
}

var _ = Step("begin")
var _ = Step("end")

// Report prints, for each step and role seen in at least half the samples,
// the median offset from begin, in µs, sorted by it.
func Report(w io.Writer) {
	type row struct {
		name  string
		med   float64
		p90   float64
		count int
	}
	var rows []row
	n := int(nsteps.Load())
	for i := 0; i < n; i++ {
		for r := 0; r < nRoles; r++ {
			var d []float64
			for _, s := range samples {
				if s[i][r] != 0 {
					d = append(d, float64(s[i][r]-s[0][Writer])/1e3)
				}
			}
			if len(d) < len(samples)/2 || len(d) == 0 {
				continue
			}
			slices.Sort(d)
			rows = append(rows, row{fmt.Sprintf("%-28s %s", names[i], roleNames[r]), d[len(d)/2], d[len(d)*9/10], len(d)})
		}
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].med < rows[b].med })
	fmt.Fprintf(w, "%d samples\n%-32s %8s %8s %8s %6s\n", len(samples), "step role", "p50 µs", "Δp50", "p90", "n")
	prev := 0.0
	for _, r := range rows {
		fmt.Fprintf(w, "%-32s %8.1f %8.1f %8.1f %6d\n", r.name, r.med, r.med-prev, r.p90, r.count)
		prev = r.med
	}
	samples = nil
}
