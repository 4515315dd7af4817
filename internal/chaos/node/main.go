// Command node is one member of the chaos test (internal/chaos): a process
// with a Pebble data directory that opens a replicated
// collections.Map[string,uint64] on a NATS cluster and writes to it with
// several writers until told to stop.
//
// It prints, one line each, on stdout (flushed at once, so that a kill -9
// loses at most a line being written):
//
//	peer <hex>                                 connected, as the member its directory names
//	online <ms>                                When().Online returned after ms (or "online -1" if it timed out)
//	w <class> <key> <value> <version> <ns> <start> [error]
//	                                           one write's outcome, latency and start (Unix
//	                                           ms); class is
//	                                           ok (acknowledged), napp (ErrNotAppliedHere:
//	                                           committed), offline (ErrOffline: not applied)
//	                                           or other (outcome unknown)
//	at <leader hex or -> <server url>          whenever the leader it knows or its server changes
//	stopped                                    after "stop": every writer has returned
//	dump <version> <n> <path>                  after "dump <path>": the replica, "key value" per line
//
// Keys are <prefix>.w<writer>.<seq>, each written once, so a replica shows
// exactly which writes it holds.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

func main() {
	dir := flag.String("dir", "", "data directory")
	urls := flag.String("urls", "", "comma-separated NATS server URLs")
	secret := flag.String("secret", "", "collection secret, 64 hex digits")
	prefix := flag.String("prefix", "", "key prefix, unique per incarnation")
	writers := flag.Int("writers", 4, "concurrent writers")
	flag.Parse()
	if err := run(*dir, strings.Split(*urls, ","), *secret, *prefix, *writers); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

// out serialises stdout lines; each is flushed at once.
type out struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *out) say(format string, args ...any) {
	o.mu.Lock()
	fmt.Fprintf(o.w, format+"\n", args...)
	o.w.Flush()
	o.mu.Unlock()
}

func run(dir string, urls []string, secretHex, prefix string, writers int) error {
	if dir == "" || prefix == "" || writers < 1 {
		return errors.New("want -dir, -prefix and -writers >= 1")
	}
	secret, err := transport.ParseSecret(secretHex)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := storage.Open(dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ident, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net, err := transport.New(ctx, transport.WithURL(urls...), transport.WithIdentity(ident), transport.WithLogger(log))
	if err != nil {
		return err
	}
	defer net.Close()
	// Default timings: the bounds checked are the documented defaults.
	m, err := collections.NewMapWriter[string, uint64](net, "chaos",
		collections.WithSecret(secret), collections.WithGroupConfig(&groups.Config{Storage: db}))
	if err != nil {
		return err
	}
	defer m.Close()
	o := &out{w: bufio.NewWriter(os.Stdout)}
	o.say("peer %s", net.ID())
	// The watcher reports what it sees until run returns.
	watchDone := make(chan struct{})
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer close(watchDone)
	watcher.Go(func() { watch(m, net, o, watchDone) })

	start := time.Now()
	octx, ocancel := context.WithTimeout(context.Background(), time.Minute)
	if err := m.When().Online(octx); err != nil {
		log.Warn("chaos node: not online; writing anyway", "err", err)
		o.say("online -1")
	} else {
		o.say("online %d", time.Since(start).Milliseconds())
	}
	ocancel()

	// The writers; stop asks them to end after the write in hand.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { write(m, o, fmt.Sprintf("%s.w%d", prefix, i), &stop) })
	}

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "stop":
			stop.Store(true)
			wg.Wait()
			o.say("stopped")
		case len(f) == 2 && f[0] == "dump":
			v, n, err := dump(m, f[1])
			if err != nil {
				return err
			}
			o.say("dump %d %d %s", v, n, f[1])
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	// Stdin closed: the test is gone.
	stop.Store(true)
	wg.Wait()
	return in.Err()
}

// write is one writer: each write a new key, one after another, without a
// deadline, so each is bounded by the library alone.
func write(m *collections.MapWriter[string, uint64], o *out, prefix string, stop *atomic.Bool) {
	for seq := 0; !stop.Load(); seq++ {
		key := fmt.Sprintf("%s.%d", prefix, seq)
		val := rand.Uint64()
		t0 := time.Now()
		v, err := m.Insert(context.Background(), key, val)
		lat := time.Since(t0)
		class := "other"
		switch {
		case err == nil:
			class = "ok"
		case errors.Is(err, collections.ErrNotAppliedHere):
			class = "napp"
		case errors.Is(err, collections.ErrOffline):
			class = "offline"
		case errors.Is(err, collections.ErrClosed):
			return
		}
		line := fmt.Sprintf("w %s %s %d %d %d %d", class, key, val, v, lat, t0.UnixMilli())
		if err != nil {
			line += " " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		o.say("%s", line)
		if err != nil {
			// Not a busy loop while the group is down.
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// watch prints the leader this node knows and the server it is connected to
// whenever either changes, polling: the chaos test uses it to say what each
// kill hit.
func watch(m *collections.MapWriter[string, uint64], net *transport.Network, o *out, done <-chan struct{}) {
	last := ""
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		leader := "-"
		if l, ok := m.Leader(); ok {
			leader = l.String()
		}
		now := leader + " " + net.URL()
		if now != last {
			o.say("at %s", now)
			last = now
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// dump writes the replica, one "key value" line each, and returns the
// version it shows. Version and contents are read until they agree.
func dump(m *collections.MapWriter[string, uint64], path string) (collections.Version, int, error) {
	for {
		v := m.Version()
		f, err := os.Create(path)
		if err != nil {
			return 0, 0, err
		}
		w := bufio.NewWriter(f)
		n := 0
		for k, val := range m.All() {
			fmt.Fprintf(w, "%s %d\n", k, val)
			n++
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return 0, 0, err
		}
		if err := f.Close(); err != nil {
			return 0, 0, err
		}
		if m.Version() == v {
			return v, n, nil
		}
	}
}
