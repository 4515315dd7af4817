// Command metrics serves a node's Prometheus metrics. It starts a node on an
// embedded NATS server with a registry (transport.WithMetrics), opens a
// replicated map as a writer, writes to it, and serves /metrics on a
// loopback address until interrupted.
//
//	go run ./examples/metrics                      # a free port; the address is printed
//	go run ./examples/metrics -addr 127.0.0.1:9464
//	go run ./examples/metrics -once                # scrape once, print the mosaik_ series, exit
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to serve /metrics on")
	once := flag.Bool("once", false, "scrape /metrics once, print the mosaik_ series and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *once); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, addr string, once bool) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	if err := loopback(addr); err != nil {
		return err
	}

	// The registry every metric of the node, and of the groups it runs,
	// goes to. Several nodes may share one: series carry a "peer" label.
	reg := prometheus.NewRegistry()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	node, err := transport.New(startCtx, transport.WithMetrics(reg))
	if err != nil {
		return err
	}
	defer node.Close()

	// Short timings keep the demo quick; the defaults suit real networks.
	w, err := collections.NewMapWriter[string, float64](node, "prices", collections.WithGroupConfig(&groups.Config{
		BootstrapDelay:    100 * time.Millisecond,
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   200 * time.Millisecond,
	}))
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.When().Online(startCtx); err != nil {
		return err
	}
	for k, v := range map[string]float64{"ETH": 3812.5, "BTC": 97000, "SOL": 241.7} {
		if _, err := w.Insert(startCtx, k, v); err != nil {
			return err
		}
	}
	say("node %s wrote 3 prices", node.ID().Short())

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()
	url := "http://" + ln.Addr().String() + "/metrics"
	say("serving metrics at %s", url)

	if once {
		return scrape(startCtx, out, url)
	}
	// Keep writing, so the figures move between scrapes.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return err
		case <-tick.C:
			if _, err := w.Insert(ctx, "ticks", float64(i)); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// scrape fetches url and prints its mosaik_ series.
func scrape(ctx context.Context, out io.Writer, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "mosaik_") {
			fmt.Fprintln(out, sc.Text())
		}
	}
	return sc.Err()
}

// loopback refuses an address that is not on the loopback interface: the
// example serves nothing beyond this machine.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("-addr must be a loopback address, such as 127.0.0.1:9464")
	}
	return nil
}
