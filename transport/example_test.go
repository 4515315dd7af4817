package transport_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaik-go/mosaik/transport"
)

// New with no options starts an embedded NATS server on a free loopback port
// and connects to it. Other nodes join the network through its URL, from this
// process or another one.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer first.Close()
	second, err := transport.New(ctx, transport.WithURL(first.URL()))
	if err != nil {
		panic(err)
	}
	defer second.Close()

	// Every node answers status requests on the network; Survey gathers the
	// answers of the others.
	others, err := first.Survey(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("network:", first.Name())
	fmt.Println("nodes heard:", len(others), others[0].Peer == second.ID())
	// Output:
	// network: mosaik
	// nodes heard: 1 true
}

// Three processes, each embedding a NATS server, clustered by routes: each
// fixes its client address (for other processes and inspect) and its route
// port, and routes to the others. Run the same on each host with its own
// addresses and the others' routes. (Compiled, not run: it needs the hosts.)
func ExampleWithRoutes() {
	ctx := context.Background()
	net, err := transport.New(ctx,
		transport.WithListen("10.0.0.1:4222"),
		transport.WithClusterListen("10.0.0.1:6222"),
		transport.WithRoutes("nats-route://10.0.0.2:6222", "nats-route://10.0.0.3:6222"),
	)
	if err != nil {
		panic(err)
	}
	defer net.Close()
	fmt.Println(net.URL(), net.RouteURL())
}
