package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mosaik-go/mosaik/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cluster is three NATS servers routed on loopback with JetStream on,
// as three nats-server processes would run. The transport does not know
// them as embedded servers, so every node reaches its server over TCP.
// A fourth server, routed but without JetStream, is added for the join
// workload. The cluster owns its servers; Shutdown stops them.
type cluster struct {
	natstest.Cluster            // Servers, URLs(i), Shutdown
	routes           []*url.URL // the route addresses of the three JetStream servers
	dir              string
	fsync            bool
}

// serverOptions returns the options of server i. fsync makes JetStream's
// file store sync every write (sync_interval: always).
func (c *cluster) serverOptions(i int, js bool) *server.Options {
	o := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		ServerName: fmt.Sprintf("s%d", i),
		// As the transport's embedded servers: bursts of raft traffic fit.
		MaxPending: 256 << 20,
	}
	o.Cluster.Name = "kvbench"
	o.Cluster.Host = "127.0.0.1"
	o.Cluster.Port = server.RANDOM_PORT
	if i < len(c.routes) {
		o.Cluster.Port, _ = strconv.Atoi(c.routes[i].Port())
	}
	o.Routes = c.routes
	if js {
		o.JetStream = true
		o.StoreDir = filepath.Join(c.dir, o.ServerName)
		o.JetStreamMaxMemory = 2 << 30
		o.JetStreamMaxStore = 8 << 30
		o.SyncAlways = c.fsync
	}
	return o
}

// startCluster starts three routed JetStream servers and waits until their
// routes are up and JetStream has a meta leader.
func startCluster(ctx context.Context, dir string, fsync bool) (*cluster, error) {
	c := &cluster{dir: dir, fsync: fsync}
	// JetStream in a cluster needs routes from the start, on every server:
	// take three free ports for them first.
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		c.routes = append(c.routes, &url.URL{Scheme: "nats-route", Host: l.Addr().String()})
		l.Close()
	}
	for i := range 3 {
		if _, err := c.add(i, true); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.waitRoutes(ctx); err != nil {
		c.Shutdown()
		return nil, err
	}
	nc, err := nats.Connect(c.Servers[0].ClientURL())
	if err != nil {
		c.Shutdown()
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.Shutdown()
		return nil, err
	}
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			c.Shutdown()
			return nil, fmt.Errorf("jetstream not ready: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// add starts server i and routes it to the first one.
func (c *cluster) add(i int, js bool) (*server.Server, error) {
	s, err := server.NewServer(c.serverOptions(i, js))
	if err != nil {
		return nil, err
	}
	go s.Start()
	c.Servers = append(c.Servers, s)
	if !s.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("nats server not ready")
	}
	return s, nil
}

// addPlain starts one more server, routed, without JetStream, and waits
// for its routes.
func (c *cluster) addPlain(ctx context.Context) (*server.Server, error) {
	s, err := c.add(len(c.Servers), false)
	if err != nil {
		return nil, err
	}
	return s, c.waitRoutes(ctx)
}

func (c *cluster) waitRoutes(ctx context.Context) error {
	for _, s := range c.Servers {
		for s.NumRemotes() < len(c.Servers)-1 { // NumRoutes counts pooled connections
			if ctx.Err() != nil {
				return errors.New("nats routes did not form")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// index returns the index of the server named name, or -1.
func (c *cluster) index(name string) int {
	for i, s := range c.Servers {
		if s.Name() == name {
			return i
		}
	}
	return -1
}
