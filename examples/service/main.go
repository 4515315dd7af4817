// Command service is a small HTTP key-value service over a replicated
// collections.Map, run as one OS process per node, the way the library is
// deployed. Each process keeps its state in its own data directory and either
// embeds a NATS server (clustered with the other processes' servers through
// routes) or connects to an existing NATS server with -nats.
//
// Three processes on one machine, each in its own terminal:
//
//	service -http 127.0.0.1:8081 -data /tmp/kv1 -listen 127.0.0.1:4221 -cluster 127.0.0.1:6221 \
//	    -routes nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223
//
// and the same for 2 and 3 with their own ports and the others' routes.
//
// The HTTP API:
//
//	PUT    /kv/{key}            body is the value; answers {"version":N}
//	GET    /kv/{key}[?version=N] the value (404 if absent); with version, waits until this node has applied N
//	DELETE /kv/{key}            answers {"version":N}
//	GET    /kv                  every entry, as a JSON object
//	GET    /watch[?from=N]      changes as JSON lines, from the current state or after version N
//	GET    /healthz             200 while a leader is known and this node follows it, else 503 and why (JSON)
//
// SIGTERM or SIGINT shuts the process down gracefully: the HTTP server stops
// taking requests and finishes those in flight, then the node hands over
// leadership if it leads and closes its store.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// config is what the flags say.
type config struct {
	httpAddr   string
	dataDir    string
	natsURL    string
	listen     string
	cluster    string
	routes     string
	name       string
	secretFile string
}

func main() {
	var c config
	flag.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "HTTP address to serve on")
	flag.StringVar(&c.dataDir, "data", "", "data directory (durable storage; required)")
	flag.StringVar(&c.natsURL, "nats", "", "connect to this NATS server or cluster (comma-separated URLs) instead of embedding one")
	flag.StringVar(&c.listen, "listen", "", "embedded NATS server's client address, host:port (default: a free loopback port)")
	flag.StringVar(&c.cluster, "cluster", "", "embedded NATS server's route address, host:port, for other servers to route to")
	flag.StringVar(&c.routes, "routes", "", "route URLs of the other nodes' embedded servers, comma-separated (nats-route://host:port)")
	flag.StringVar(&c.name, "name", "kv", "name of the replicated map")
	flag.StringVar(&c.secretFile, "secret-file", "", "file holding the map's secret, 64 hex digits (default: an open group)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, c, logger); err != nil {
		logger.Error("service stopped", "err", err)
		os.Exit(1)
	}
	logger.Info("stopped")
}

// run serves until ctx ends, then shuts down in order: HTTP, the map, the
// network, the store.
func run(ctx context.Context, c config, logger *slog.Logger) error {
	if c.dataDir == "" {
		return errors.New("-data is required")
	}
	db, err := storage.Open(c.dataDir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	// The node's identity lives in its data directory, so a restarted process
	// comes back as the same member of the same groups.
	id, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		return err
	}
	opts := []transport.Option{transport.WithIdentity(id), transport.WithLogger(logger)}
	if c.natsURL != "" {
		opts = append(opts, transport.WithURL(c.natsURL))
	} else {
		if c.listen != "" {
			opts = append(opts, transport.WithListen(c.listen))
		}
		if c.cluster != "" {
			opts = append(opts, transport.WithClusterListen(c.cluster))
		}
		if c.routes != "" {
			opts = append(opts, transport.WithRoutes(strings.Split(c.routes, ",")...))
		}
	}
	// New waits for the routes (up to 5 s) so that a node does not found a
	// group of its own before it sees the others.
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	nw, err := transport.New(nctx, opts...)
	cancel()
	if err != nil {
		return err
	}
	defer nw.Close()

	mopts := []collections.Option{collections.WithStorage(db)}
	if c.secretFile != "" {
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return err
		}
		s, err := transport.ParseSecret(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		mopts = append(mopts, collections.WithSecret(s))
	}
	m, err := collections.NewMapWriter[string, string](nw, c.name, mopts...)
	if err != nil {
		return err
	}
	defer m.Close() // hands over leadership if this node leads

	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	// Watches stream until the client leaves; they end when shutdown begins,
	// so that Shutdown does not wait for them.
	watchCtx, stopWatches := context.WithCancel(context.Background())
	defer stopWatches()
	srv := &http.Server{Handler: newServer(m, nw.ID(), watchCtx), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }() // ends when Shutdown returns
	logger.Info("serving", "http", ln.Addr().String(), "nats", nw.URL(), "routes", nw.RouteURL(), "peer", nw.ID().String(), "data", c.dataDir)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	stopWatches()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-serveErr
	return err // the deferred Closes run next: map, network, store
}

// server answers the HTTP API over one map. It holds no state of its own.
type server struct {
	m       *collections.MapWriter[string, string]
	self    transport.PeerID
	watches context.Context // ends when the process shuts down
}

func newServer(m *collections.MapWriter[string, string], self transport.PeerID, watches context.Context) http.Handler {
	s := &server{m: m, self: self, watches: watches}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key}", s.put)
	mux.HandleFunc("GET /kv/{key}", s.get)
	mux.HandleFunc("DELETE /kv/{key}", s.remove)
	mux.HandleFunc("GET /kv", s.list)
	mux.HandleFunc("GET /watch", s.watch)
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

// maxValue bounds a request body: the map refuses larger values anyway.
const maxValue = collections.MaxValueSize

// writeTimeout bounds a write; its error then says whether it applied.
const writeTimeout = 10 * time.Second

func (s *server) put(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValue))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	v, err := s.m.Insert(ctx, r.PathValue("key"), string(b))
	writeVersion(w, v, err)
}

func (s *server) remove(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	v, err := s.m.Remove(ctx, r.PathValue("key"))
	writeVersion(w, v, err)
}

// writeVersion answers a write: its version, or what its error says of it.
func writeVersion(w http.ResponseWriter, v collections.Version, err error) {
	switch {
	case err == nil, errors.Is(err, collections.ErrNotAppliedHere):
		// Applied, at v (with ErrNotAppliedHere this node shows it later).
		writeJSON(w, http.StatusOK, map[string]any{"version": v})
	case errors.Is(err, collections.ErrTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
	case errors.Is(err, collections.ErrNotApplied):
		// Offline or refused: not applied, safe to retry.
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		// Outcome unknown, or shutting down: it may have applied.
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	}
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	if !s.reach(w, r) {
		return
	}
	val, ok := s.m.Get(r.PathValue("key"))
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	io.WriteString(w, val)
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	if !s.reach(w, r) {
		return
	}
	all := map[string]string{}
	for k, v := range s.m.All() {
		all[k] = v
	}
	writeJSON(w, http.StatusOK, all)
}

// reach waits until this node has applied ?version=N, if given: a client
// that wrote through one node reads its write through another.
func (s *server) reach(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query().Get("version")
	if q == "" {
		return true
	}
	v, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		http.Error(w, "version: "+err.Error(), http.StatusBadRequest)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	if err := s.m.When().Reaches(ctx, collections.Version(v)); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return false
	}
	return true
}

// change is one change of a watch, as JSON.
type change struct {
	Op    string `json:"op"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

type event struct {
	Kind    string   `json:"kind"`
	Version uint64   `json:"version"`
	Changes []change `json:"changes,omitempty"`
}

// watch streams events as JSON lines until the client leaves, the process
// shuts down, or the watch fails (ErrCompacted for a ?from too old).
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	opts := []collections.WatchOption{collections.WithInitial()}
	if q := r.URL.Query().Get("from"); q != "" {
		v, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			http.Error(w, "from: "+err.Error(), http.StatusBadRequest)
			return
		}
		opts = []collections.WatchOption{collections.FromVersion(collections.Version(v))}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.watches, cancel)()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(w).Flush
	flush()
	enc := json.NewEncoder(w)
	for ev, err := range s.m.Watch(ctx, opts...) {
		if err != nil {
			if ctx.Err() == nil {
				enc.Encode(map[string]string{"error": err.Error()})
			}
			return
		}
		out := event{Kind: ev.Kind.String(), Version: uint64(ev.Version)}
		for _, c := range ev.Changes {
			out.Changes = append(out.Changes, change{Op: c.Op.String(), Key: c.Key, Value: c.Value})
		}
		if enc.Encode(out) != nil || flush() != nil {
			return
		}
	}
}

// health is what /healthz answers.
type health struct {
	Online  bool   `json:"online"`
	Error   string `json:"error,omitempty"` // why it is not online
	Peer    string `json:"peer"`
	Leader  string `json:"leader,omitempty"`
	Version uint64 `json:"version"`
}

// healthz is 200 while a leader is known and this node follows it (and has
// caught up once); otherwise 503 with the reason Online gives.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	h := health{Online: true, Peer: s.self.String(), Version: uint64(s.m.Version())}
	code := http.StatusOK
	if err := s.m.When().Online(ctx); err != nil {
		h.Online, h.Error, code = false, err.Error(), http.StatusServiceUnavailable
	}
	if l, ok := s.m.Leader(); ok {
		h.Leader = l.String()
	}
	writeJSON(w, code, h)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
