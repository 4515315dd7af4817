// Command natsd is a nats-server built from the module mosaik depends on,
// for the chaos test (internal/chaos): it listens for clients and routes on
// loopback only, joins the cluster named by -routes, prints "ready" once it
// takes clients, and runs until it is killed or its stdin closes (so that it
// never outlives a test that died).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	port := flag.Int("port", 0, "client port on 127.0.0.1")
	cluster := flag.Int("cluster", 0, "route port on 127.0.0.1")
	routes := flag.String("routes", "", "comma-separated route URLs of the other servers (nats-route://127.0.0.1:port)")
	name := flag.String("name", "", "server name")
	flag.Parse()
	if err := run(*port, *cluster, *routes, *name); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
}

func run(port, cluster int, routes, name string) error {
	if port <= 0 || cluster <= 0 {
		return fmt.Errorf("want -port and -cluster, got %d and %d", port, cluster)
	}
	opts := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       port,
		MaxPending: 256 << 20,
		Cluster: server.ClusterOpts{
			Name: "chaos",
			Host: "127.0.0.1",
			Port: cluster,
		},
	}
	for _, r := range strings.Split(routes, ",") {
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil {
			return fmt.Errorf("route %q: %w", r, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("not ready to take clients on port %d", port)
	}
	fmt.Println("ready")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		s.Shutdown()
	}()
	s.WaitForShutdown()
	return nil
}
