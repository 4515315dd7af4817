package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/transport"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// cluster is three nodes in this process on one NATS server, which the
// first embeds; the other two reach it in process, as the nodes of the
// issue's table did. The server's monitoring port serves varz, the
// server's own message counts. The cluster owns the three networks;
// close ends them, the server last.
type cluster struct {
	nets   []*transport.Network
	faults []*transport.Faults // by node, healed unless a failover runs
	varz   string              // http://127.0.0.1:port/varz
	http   *http.Client
}

func startCluster(ctx context.Context) (*cluster, error) {
	// The transport keeps its server to itself: give it a monitoring port
	// picked here, free a moment ago.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	faults := []*transport.Faults{transport.NewFaults(), transport.NewFaults(), transport.NewFaults()}
	hub, err := transport.New(ctx, transport.WithFaults(faults[0]), transport.WithServerOptions(func(o *server.Options) {
		o.HTTPHost, o.HTTPPort = "127.0.0.1", port
	}))
	if err != nil {
		return nil, err
	}
	c := &cluster{
		nets:   []*transport.Network{hub},
		faults: faults,
		varz:   "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/varz",
		// No keep-alive: no connection goroutine outlives a request.
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	for i := range 2 {
		n, err := transport.New(ctx, transport.WithURL(hub.URL()), transport.WithFaults(faults[i+1]))
		if err != nil {
			c.close()
			return nil, err
		}
		c.nets = append(c.nets, n)
	}
	if _, err := c.messages(); err != nil {
		c.close()
		return nil, fmt.Errorf("varz: %w", err)
	}
	return c, nil
}

// counts are the server's message counters: in, what clients published;
// out, what it delivered to subscribers.
type counts struct{ in, out int64 }

func (c *cluster) messages() (counts, error) {
	resp, err := c.http.Get(c.varz)
	if err != nil {
		return counts{}, err
	}
	defer resp.Body.Close()
	var v struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return counts{}, err
	}
	return counts{v.InMsgs, v.OutMsgs}, nil
}

func (c *cluster) close() {
	for i := len(c.nets) - 1; i >= 0; i-- {
		c.nets[i].Close()
	}
}

// An opener opens the maps of one mode. It owns every handle it opened,
// and whatever they share; close closes them all and returns their
// errors joined. open may be called concurrently.
type opener interface {
	open(node int, name string) (*collections.MapWriter[string, int], error)
	close() error
}

// modes are the ways to open a collection: a group each, or every map in
// one space per node.
var modes = map[string]func(c *cluster) opener{
	"group": func(c *cluster) opener { return &groupOpener{c: c} },
	"space": func(c *cluster) opener { return &spaceOpener{c: c, spaces: make([]*spaceOf, len(c.nets))} },
}

func modeNames() []string {
	var ns []string
	for n := range modes {
		ns = append(ns, n)
	}
	return ns
}

func validMode(m string) bool { _, ok := modes[m]; return ok }

// groupOpener opens every map as its own Raft group, with the default
// group settings.
type groupOpener struct {
	c  *cluster
	mu sync.Mutex
	hs []*collections.MapWriter[string, int]
}

func (g *groupOpener) open(node int, name string) (*collections.MapWriter[string, int], error) {
	w, err := collections.NewMapWriter[string, int](g.c.nets[node], name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.hs = append(g.hs, w)
	g.mu.Unlock()
	return w, nil
}

func (g *groupOpener) close() error {
	g.mu.Lock()
	hs := g.hs
	g.hs = nil
	g.mu.Unlock()
	errs := make([]error, len(hs))
	parallel(len(hs), closeConc, func(i int) { errs[i] = hs[i].Close() })
	return errors.Join(errs...)
}

// closeConc is how many handles close at a time: a closing member hands
// over its leadership and leaves the group, a few round trips each.
const closeConc = 64

// parallel calls f(0..n-1) on conc goroutines and waits for them.
func parallel(n, conc int, f func(i int)) {
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range min(n, conc) {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= n {
					return
				}
				f(j)
			}
		})
	}
	wg.Wait()
}

// bySubject counts for d the messages published on the server by the
// kind of their subject, the token after the network's name ("hb": Raft
// heartbeats, "raft": other Raft RPCs, "in": replies, "ann": members'
// announcements, ...), and returns them per second. Its subscription to
// every subject makes the server deliver each message once more: the
// other columns must not be measured meanwhile.
func (c *cluster) bySubject(ctx context.Context, d time.Duration) (map[string]float64, error) {
	nc, err := nats.Connect(c.nets[0].URL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	prefix := c.nets[0].Name() + "."
	counts := map[string]int{} // owned by the subscription's handler until Unsubscribe
	var mu sync.Mutex
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		kind, ok := strings.CutPrefix(m.Subject, prefix)
		if !ok {
			kind = "(other)"
		} else {
			kind, _, _ = strings.Cut(kind, ".")
		}
		mu.Lock()
		counts[kind]++
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	began := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	if err := sub.Unsubscribe(); err != nil {
		return nil, err
	}
	secs := time.Since(began).Seconds()
	mu.Lock()
	defer mu.Unlock()
	rates := map[string]float64{}
	for k, n := range counts {
		rates[k] = float64(n) / secs
	}
	return rates, nil
}

// spaceOpener opens every map in one collections.MapSpace per node, with
// the default group settings. Closing a space closes its maps' handles.
type spaceOpener struct {
	c      *cluster
	mu     sync.Mutex
	spaces []*spaceOf // by node, opened by the first open on the node
}

type spaceOf struct {
	once sync.Once
	s    *collections.MapSpace[string, int]
	err  error
}

func (o *spaceOpener) open(node int, name string) (*collections.MapWriter[string, int], error) {
	o.mu.Lock()
	sp := o.spaces[node]
	if sp == nil {
		sp = &spaceOf{}
		o.spaces[node] = sp
	}
	o.mu.Unlock()
	sp.once.Do(func() { sp.s, sp.err = collections.NewMapSpace[string, int](o.c.nets[node], "scalebench") })
	if sp.err != nil {
		return nil, sp.err
	}
	return sp.s.Writer(name)
}

func (o *spaceOpener) close() error {
	o.mu.Lock()
	spaces := o.spaces
	o.spaces = make([]*spaceOf, len(spaces))
	o.mu.Unlock()
	errs := make([]error, len(spaces))
	parallel(len(spaces), len(spaces), func(i int) {
		if sp := spaces[i]; sp != nil && sp.s != nil {
			errs[i] = sp.s.Close()
		}
	})
	return errors.Join(errs...)
}
