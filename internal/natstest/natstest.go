// Package natstest runs a cluster of NATS servers in this process, reached
// over their sockets as separate nats-server processes would be, so tests
// and the stall benchmark can crash one server while the nodes on it
// reconnect to another.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is a set of NATS servers clustered by routes. Its servers are
// not known to the transport as embedded ones, so nodes connect to them
// over TCP and fail over like clients of real servers.
type Cluster struct {
	Servers []*server.Server
}

// Start starts n servers on loopback, routed to each other, and waits
// until every server has a route to every other one.
func Start(n int) (*Cluster, error) {
	c := &Cluster{}
	var seed *url.URL
	for i := range n {
		o := &server.Options{
			Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
			ServerName: fmt.Sprintf("s%d", i),
		}
		o.Cluster.Name = "natstest"
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = server.RANDOM_PORT
		if seed != nil {
			o.Routes = []*url.URL{seed}
		}
		s, err := server.NewServer(o)
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		go s.Start()
		c.Servers = append(c.Servers, s)
		if !s.ReadyForConnections(10 * time.Second) {
			c.Shutdown()
			return nil, errors.New("natstest: server not ready")
		}
		if seed == nil {
			seed = &url.URL{Scheme: "nats-route", Host: s.ClusterAddr().String()}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range c.Servers {
		for s.NumRemotes() < n-1 { // NumRoutes counts pooled connections, several per server
			if time.Now().After(deadline) {
				c.Shutdown()
				return nil, errors.New("natstest: routes did not form")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return c, nil
}

// URLs returns the client URLs with server i's first: a client given them
// with nats.DontRandomize connects to server i and fails over to the others.
func (c *Cluster) URLs(i int) []string {
	urls := []string{c.Servers[i].ClientURL()}
	for j, s := range c.Servers {
		if j != i {
			urls = append(urls, s.ClientURL())
		}
	}
	return urls
}

// Crash stops server i at once, as kill -9 would: its clients lose their
// connection and whatever it held in flight.
func (c *Cluster) Crash(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Dialer dials NATS servers, waiting Slow first when set: a test makes a
// client's reconnect slow, so that replies sent to it while it has no
// server are lost for certain rather than by chance.
type Dialer struct {
	slow atomic.Int64 // nanoseconds
}

// SetSlow makes every dial from now on wait d first.
func (d *Dialer) SetSlow(t time.Duration) { d.slow.Store(int64(t)) }

// Dial implements nats.CustomDialer.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	time.Sleep(time.Duration(d.slow.Load()))
	return (&net.Dialer{Timeout: 2 * time.Second}).Dial(network, address)
}

// Options returns the client options that use d and try the servers in
// the order given.
func (d *Dialer) Options() []nats.Option {
	return []nats.Option{nats.SetCustomDialer(d), nats.DontRandomize()}
}
