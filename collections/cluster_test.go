package collections

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/transport"
)

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEmbeddedCluster runs three nodes, each with its own embedded server,
// clustered by routes from the first one, whose client and route addresses
// are chosen in advance; the first node restarts at the same addresses and
// the others find it again.
func TestEmbeddedCluster(t *testing.T) {
	client, cluster := freeAddr(t), freeAddr(t)
	first := func(routes ...string) *transport.Network {
		n, err := transport.New(context.Background(), transport.WithListen(client), transport.WithClusterListen(cluster),
			transport.WithRoutes(routes...))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := first()
	if got, want := a.URL(), "nats://"+client; got != want {
		t.Fatalf("URL %q, want %q", got, want)
	}
	if got, want := a.RouteURL(), "nats-route://"+cluster; got != want {
		t.Fatalf("RouteURL %q, want %q", got, want)
	}
	// Each node routes to every server started before it: New returns once
	// those routes are up, so the mesh is whole before a group forms.
	routes := []string{"nats-route://" + cluster}
	var others []*transport.Network
	for range 2 {
		n, err := transport.New(context.Background(), transport.WithRoutes(routes...), transport.WithClusterListen("127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		others = append(others, n)
		routes = append(routes, n.RouteURL())
	}
	wa := NewMapWriterOrFatal(t, a)
	wb := openMapW[string, int](t, others[0], "m")
	wc := openMapW[string, int](t, others[1], "m")
	online(t, wa, wb, wc)
	for i, w := range []*MapWriter[string, int]{wa, wb, wc} {
		v := must[Version](t)(w.Insert(tctx(t), fmt.Sprint("k", i), i))
		reach(t, v, wa, wb, wc)
	}
	_ = closeOf(t, wa)
	a.Close()

	// Restarted, it routes to the others: New returns once a route is up,
	// so the group is found instead of founded again.
	a = first(others[0].RouteURL(), others[1].RouteURL())
	t.Cleanup(func() { a.Close() })
	wa = openMapW[string, int](t, a, "m")
	online(t, wa)
	if err := wa.When().Reaches(ctxT(t, 30*time.Second), wb.Version()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if v, ok := wa.Get(fmt.Sprint("k", i)); !ok || v != i {
			t.Fatalf("restarted first node: k%d = %v, %v", i, v, ok)
		}
	}
}

// NewMapWriterOrFatal opens the test map on n without closing it at the
// end of the test: the test closes it itself.
func NewMapWriterOrFatal(t *testing.T, n *transport.Network) *MapWriter[string, int] {
	t.Helper()
	return must[*MapWriter[string, int]](t)(NewMapWriter[string, int](n, "m", testOpts()...))
}
