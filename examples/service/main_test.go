package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestService builds the service, runs three of it as separate processes
// whose embedded NATS servers route to each other, and checks what a
// deployment relies on: a write through one node reads through another, the
// leader's process killed with SIGKILL leaves two that still serve and keep
// every acknowledged write, the killed node restarted from its data directory
// catches up, and SIGTERM stops a node cleanly.
func TestService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and runs three processes")
	}
	start := time.Now()
	bin := buildService(t)
	t.Logf("built in %v", time.Since(start).Round(time.Millisecond))

	nodes := newCluster(t, bin, 3)
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitHealthy(t)
	}
	t.Logf("3 nodes online after %v", time.Since(start).Round(time.Millisecond))

	// Write through each node, read through the next one.
	var last uint64
	for i, n := range nodes {
		last = n.put(t, fmt.Sprintf("before-%d", i), strconv.Itoa(i))
		next := nodes[(i+1)%len(nodes)]
		if got, code := next.get(t, fmt.Sprintf("before-%d", i), last); code != http.StatusOK || got != strconv.Itoa(i) {
			t.Fatalf("node %d reads before-%d = %q (HTTP %d) at version %d, want %q", next.i, i, got, code, last, strconv.Itoa(i))
		}
	}

	// Kill the leader's process: the others elect a new leader and keep
	// every write acknowledged before.
	victim := nodes[0].leaderNode(t, nodes)
	peer := victim.waitHealthy(t).Peer
	var rest []*node
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, n)
		}
	}
	// A watch on a survivor, opened before the kill, sees writes after it.
	events := rest[1].watch(t, last)
	victim.kill(t)
	t.Logf("killed node %d, the leader (SIGKILL)", victim.i)
	for i, n := range rest {
		last = n.put(t, fmt.Sprintf("after-%d", i), "x") // retries until a new leader takes it
	}
	want := map[string]string{"before-0": "0", "before-1": "1", "before-2": "2", "after-0": "x", "after-1": "x"}
	for _, n := range rest {
		n.waitHealthy(t)
		if got := n.list(t, last); !maps.Equal(got, want) {
			t.Fatalf("node %d holds %v after the leader died, want %v", n.i, got, want)
		}
	}
	waitEvents(t, events, "after-0", "after-1")

	// Restart the killed node from its data directory: it comes back as the
	// same member and catches up with what it missed.
	victim.start(t)
	if h := victim.waitHealthy(t); h.Peer != peer {
		t.Fatalf("restarted node %d is peer %s, was %s: its identity did not survive in its data directory", victim.i, h.Peer, peer)
	}
	if got := victim.list(t, last); !maps.Equal(got, want) {
		t.Fatalf("restarted node %d holds %v, want %v", victim.i, got, want)
	}
	v := victim.put(t, "restarted", "yes")
	if got, code := rest[0].get(t, "restarted", v); code != http.StatusOK || got != "yes" {
		t.Fatalf("node %d reads restarted = %q (HTTP %d), want yes", rest[0].i, got, code)
	}
	t.Logf("node %d restarted and caught up after %v", victim.i, time.Since(start).Round(time.Millisecond))

	// SIGTERM: every process stops on its own and exits 0.
	for _, n := range nodes {
		n.terminate(t)
	}
	for _, n := range nodes {
		n.waitExit(t, 0)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// deadline bounds every wait: generous, so that a busy machine passes.
const deadline = 60 * time.Second

func buildService(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the service with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "service")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// node is one process of the service: its ports and data directory stay the
// same across restarts.
type node struct {
	i                   int
	bin, dir            string
	http, nats, cluster string // addresses
	routes              []string
	url                 string
	log                 *syncBuffer
	client              *http.Client

	mu      sync.Mutex    // guards the fields below
	cmd     *exec.Cmd     // the running process, or the last one
	exited  chan struct{} // closed when cmd's process has exited
	exitErr error
}

func newCluster(t *testing.T, bin string, n int) []*node {
	ports := freePorts(t, 3*n)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = &node{
			i: i, bin: bin, dir: filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i)),
			http: ports[3*i], nats: ports[3*i+1], cluster: ports[3*i+2],
			log:    &syncBuffer{},
			client: &http.Client{Timeout: 20 * time.Second},
		}
		nodes[i].url = "http://" + nodes[i].http
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.routes = append(a.routes, "nats-route://"+b.cluster)
			}
		}
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.kill(t)
		}
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("node %d log:\n%s", n.i, n.log.String())
			}
		}
	})
	return nodes
}

// freePorts reserves n loopback addresses; they are free when it returns,
// and another process taking one before the service does is unlikely.
func freePorts(t *testing.T, n int) []string {
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

func (n *node) start(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.log, "--- start\n")
	cmd := exec.Command(n.bin, "-http", n.http, "-data", n.dir, "-listen", n.nats,
		"-cluster", n.cluster, "-routes", strings.Join(n.routes, ","))
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { // ends when the process exits; kill in Cleanup sees to that
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
}

// kill ends the process with SIGKILL and waits until it has exited.
func (n *node) kill(t *testing.T) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (n *node) terminate(t *testing.T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("node %d: SIGTERM: %v", n.i, err)
	}
}

func (n *node) waitExit(t *testing.T, code int) {
	t.Helper()
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(deadline):
		t.Fatalf("node %d did not exit within %v of SIGTERM", n.i, deadline)
	}
	n.mu.Lock()
	err := n.exitErr
	n.mu.Unlock()
	if got := n.cmd.ProcessState.ExitCode(); got != code {
		t.Fatalf("node %d exited with %d (%v), want %d", n.i, got, err, code)
	}
}

// waitHealthy waits until /healthz says online.
func (n *node) waitHealthy(t *testing.T) health {
	t.Helper()
	var h health
	waitFor(t, fmt.Sprintf("node %d online", n.i), func() error {
		resp, err := n.client.Get(n.url + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		h = health{}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !h.Online {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, h.Error)
		}
		return nil
	})
	return h
}

// leaderNode returns the node that leads, as n's /healthz tells.
func (n *node) leaderNode(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, "a leader", func() error {
		h := n.waitHealthy(t)
		for _, m := range nodes {
			if m.waitHealthy(t).Peer == h.Leader {
				leader = m
				return nil
			}
		}
		return fmt.Errorf("leader %q is none of the nodes", h.Leader)
	})
	return leader
}

// put writes key through n, retrying while no leader takes it (HTTP 503),
// and returns the version it was acknowledged at.
func (n *node) put(t *testing.T, key, value string) uint64 {
	t.Helper()
	var v uint64
	waitFor(t, fmt.Sprintf("PUT %s through node %d", key, n.i), func() error {
		req, _ := http.NewRequest(http.MethodPut, n.url+"/kv/"+key, strings.NewReader(value))
		resp, err := n.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			return fmt.Errorf("not applied: %s", b) // safe to send again
		case http.StatusGatewayTimeout:
			return fmt.Errorf("outcome unknown: %s", b) // a PUT may be sent again
		default:
			t.Fatalf("PUT %s through node %d: HTTP %d: %s", key, n.i, resp.StatusCode, b)
		}
		var r struct{ Version uint64 }
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("PUT %s: %v: %s", key, err, b)
		}
		v = r.Version
		return nil
	})
	return v
}

// get reads key through n once it has applied version.
func (n *node) get(t *testing.T, key string, version uint64) (string, int) {
	t.Helper()
	resp, err := n.client.Get(fmt.Sprintf("%s/kv/%s?version=%d", n.url, key, version))
	if err != nil {
		t.Fatalf("GET %s through node %d: %v", key, n.i, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// list reads every entry through n once it has applied version.
func (n *node) list(t *testing.T, version uint64) map[string]string {
	t.Helper()
	resp, err := n.client.Get(fmt.Sprintf("%s/kv?version=%d", n.url, version))
	if err != nil {
		t.Fatalf("GET /kv through node %d: %v", n.i, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /kv through node %d: HTTP %d: %s", n.i, resp.StatusCode, b)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET /kv through node %d: %v: %s", n.i, err, b)
	}
	return m
}

// watch streams n's changes after version into a channel, until the test
// ends.
func (n *node) watch(t *testing.T, version uint64) <-chan event {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/watch?from=%d", n.url, version)) // no client timeout: it streams
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	events := make(chan event, 64)
	go func() { // ends when the body closes
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	return events
}

// waitEvents waits until the watch has shown an insert of each key.
func waitEvents(t *testing.T, events <-chan event, keys ...string) {
	t.Helper()
	seen := map[string]bool{}
	timeout := time.After(deadline)
	for len(seen) < len(keys) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended; saw %v of %v", seen, keys)
			}
			for _, c := range ev.Changes {
				for _, k := range keys {
					if c.Op == "insert" && c.Key == k {
						seen[k] = true
					}
				}
			}
		case <-timeout:
			t.Fatalf("watch saw %v of %v within %v", seen, keys, deadline)
		}
	}
}

// waitFor retries fn until it succeeds or the deadline passes.
func waitFor(t *testing.T, what string, fn func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v: %v", what, deadline, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer collects a process's output; the process writes it from
// exec's copying goroutines while the test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
