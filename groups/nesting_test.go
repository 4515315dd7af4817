package groups

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/rsm"
)

// countMachine counts the commands it applied, whatever they are.
type countMachine struct{ n *atomic.Int64 }

func (countMachine) Signature() string             { return "test.count.v1" }
func (m countMachine) Apply(any, rsm.ApplyContext) { m.n.Add(1) }
func (m countMachine) Query(struct{}) int64        { return m.n.Load() }

// nested returns a command of depth nested arrays.
func nested(depth int) any {
	var v any = 1
	for range depth {
		v = []any{v}
	}
	return v
}

// A command the machine could not decode must not be reported as applied:
// it is refused before it is sent. Anything the machine can decode applies.
func TestCommandNesting(t *testing.T) {
	c := newCluster(t)
	nd := c.add(nil)
	online(t, nd)
	var n atomic.Int64
	g, err := Join(nd.net, NewKey(), countMachine{&n}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.When().Online(ctxT(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, depth := range []int{1, 40, 64} {
		before := n.Load()
		if _, err := g.Execute(ctxT(t, 10*time.Second), nested(depth)); err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		if n.Load() != before+1 {
			t.Fatalf("a command nested %d deep was acknowledged but not applied", depth)
		}
	}
	if _, err := g.Execute(ctxT(t, 10*time.Second), nested(65)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("depth 65: %v, want ErrTooLarge", err)
	}
}
