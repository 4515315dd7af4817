package collections

import (
	"testing"
	"time"
)

func TestMapSmoke(t *testing.T) {
	tn := newTestNet(t)
	w := cleanup(t, must[*MapWriter[string, float64]](t)(NewMapWriter[string, float64](tn.node(), "prices", testOpts()...)))
	r := cleanup(t, must[*MapReader[string, float64]](t)(NewMapReader[string, float64](tn.node(), "prices", testOpts()...)))
	if err := w.When().Online(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	v, err := w.Insert(ctxT(t, 5*time.Second), "ETH", 3812.5)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := w.Get("ETH"); !ok || got != 3812.5 {
		t.Fatalf("writer reads %v %v", got, ok)
	}
	if err := r.When().Reaches(ctxT(t, 5*time.Second), v); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Get("ETH"); !ok || got != 3812.5 {
		t.Fatalf("reader reads %v %v", got, ok)
	}
}
