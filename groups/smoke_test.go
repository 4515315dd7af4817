package groups

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	c := newCluster(t)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	for _, nd := range []*node{a, b, d} {
		if err := nd.g.When().Online(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	l := c.leader()
	t.Logf("leader %s", l.net.ID().Short())
	for i, nd := range []*node{a, b, d} {
		idx, err := nd.g.Execute(ctxT(t, 5*time.Second), counterCmd{Add: int64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d idx %d", i, idx)
	}
	for _, nd := range []*node{a, b, d} {
		r, err := nd.g.Query(ctxT(t, 5*time.Second), struct{}{}, Strong)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value != 6 {
			t.Fatalf("value %d", r.Value)
		}
	}
	t.Log(a.g.Members())
}
