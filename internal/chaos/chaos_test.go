// Package chaos runs mosaik as a user deploys it, as separate processes:
// three nats-server processes clustered by routes (natsd) and three member
// processes with Pebble storage (node), all writing to one replicated Map,
// while a seeded schedule kills nodes and servers with SIGKILL and restarts
// them. Then it heals everything and checks the outcome.
//
//	go test ./internal/chaos -v                                 # the short run (60 s of chaos)
//	go test ./internal/chaos -v -timeout 30m -chaos.duration=5m # a long run
//	go test ./internal/chaos -v -chaos.seed=0 -chaos.keep=DIR   # a random schedule; keep logs, data, writes
//
// The README's "Chaos test" section says what it checks and what it found.
package chaos

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 60*time.Second, "how long the kill schedule runs")
	chaosSeed     = flag.Uint64("chaos.seed", 1, "the schedule's seed; 0 draws one (printed)")
	chaosWriters  = flag.Int("chaos.writers", 3, "concurrent writers per node")
	chaosSlack    = flag.Duration("chaos.slack", time.Second, "allowance over a write's documented bound, for a busy machine")
	chaosKeep     = flag.String("chaos.keep", "", "keep logs, data directories and every write's outcome in this (new) directory")
)

// writeBound is the documented bound on a write without a deadline: 3 ×
// ForwardTimeout, at the default ForwardTimeout of 5 s (groups.Config).
const writeBound = 3 * 5 * time.Second

// longRun is the chaos duration from which the schedule also kills all three
// servers at once, now and then.
const longRun = 3 * time.Minute

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// child is one process. Its reader goroutine owns stdout and, once stdout
// ends, reaps the process and closes done.
type child struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  string
	done    chan struct{}
	killed  atomic.Bool  // set before we kill it: its end is expected
	online  atomic.Bool  // it said "online"
	peer    atomic.Value // string: its "peer" line
	at      atomic.Value // string: its last "at" line: leader and server
	answers chan string  // control answers: ready, stopped, dump
	exitErr error        // set before done closes
}

// start runs bin in its own process group. Lines starting with "w " go to
// onWrite; the others to answers. If the process ends without being killed,
// or says it did not come online, unexpected is called.
func start(t *testing.T, logDir, name, bin string, args []string, onWrite func(string), unexpected func(*child, string)) *child {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := filepath.Join(logDir, name+".stderr")
	logf, err := os.OpenFile(stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, stderr: stderr, done: make(chan struct{}), answers: make(chan string, 16)}
	t.Cleanup(c.kill)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "w ") {
				onWrite(line)
				continue
			}
			if rest, ok := strings.CutPrefix(line, "peer "); ok {
				c.peer.Store(rest)
				continue
			}
			if rest, ok := strings.CutPrefix(line, "at "); ok {
				c.at.Store(rest)
				continue
			}
			if strings.HasPrefix(line, "online") {
				c.online.Store(true)
				if line == "online -1" {
					unexpected(c, "not online within a minute of starting")
				}
			}
			select {
			case c.answers <- line:
			default: // nobody asked (an "online" of a child nobody waits for)
			}
		}
		c.exitErr = cmd.Wait()
		logf.Close()
		if !c.killed.Load() {
			unexpected(c, fmt.Sprintf("exited on its own: %v", c.exitErr))
		}
	}()
	return c
}

// kill sends SIGKILL to the child's process group and waits until it is
// reaped. Idempotent.
func (c *child) kill() {
	c.killed.Store(true)
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// await returns the next answer starting with prefix, skipping others.
func (c *child) await(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case line := <-c.answers:
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-c.done:
			return "", fmt.Errorf("%s ended (%v) waiting for %q", c.name, c.exitErr, prefix)
		case <-deadline:
			return "", fmt.Errorf("%s: no %q within %v", c.name, prefix, timeout)
		}
	}
}

// write is one write's outcome as its node reported it.
type write struct {
	class   string // ok, napp, offline, other
	value   uint64
	version uint64
	lat     time.Duration
	start   time.Time
	node    string
	err     string
}

// run is one chaos run: its processes, and what they reported.
type run struct {
	t        *testing.T
	dir      string
	natsBin  string
	nodeBin  string
	secret   string
	writers  int
	ports    [3][2]int // client and route port of each server
	servers  [3]*child
	nodes    [3]*child
	incarn   [3]int
	children []*child // every process started, for the logs

	mu      sync.Mutex
	writes  map[string]write
	bad     []string // malformed write lines
	died    []string // processes that ended on their own, or never came online
	errText map[string]int
}

func (r *run) onWrite(node string) func(string) {
	return func(line string) {
		// w <class> <key> <value> <version> <ns> <start> [error]
		f := strings.SplitN(line, " ", 8)
		if len(f) < 7 {
			r.mu.Lock()
			r.bad = append(r.bad, line)
			r.mu.Unlock()
			return
		}
		val, err1 := strconv.ParseUint(f[3], 10, 64)
		ver, err2 := strconv.ParseUint(f[4], 10, 64)
		ns, err3 := strconv.ParseInt(f[5], 10, 64)
		ms, err4 := strconv.ParseInt(f[6], 10, 64)
		w := write{class: f[1], value: val, version: ver, lat: time.Duration(ns), start: time.UnixMilli(ms), node: node}
		if len(f) == 8 {
			w.err = f[7]
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			r.bad = append(r.bad, line)
			return
		}
		if _, dup := r.writes[f[2]]; dup {
			r.bad = append(r.bad, "key reported twice: "+line)
			return
		}
		r.writes[f[2]] = w
		if w.err != "" {
			e := w.err
			if len(e) > 160 {
				e = e[:160]
			}
			r.errText[w.class+": "+e]++
		}
	}
}

func (r *run) unexpected(c *child, what string) {
	r.mu.Lock()
	r.died = append(r.died, c.name+" "+what)
	r.mu.Unlock()
}

func (r *run) startServer(i int) error {
	var routes []string
	for j := range 3 {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", r.ports[j][1]))
		}
	}
	args := []string{"-name", fmt.Sprintf("s%d", i), "-port", strconv.Itoa(r.ports[i][0]),
		"-cluster", strconv.Itoa(r.ports[i][1]), "-routes", strings.Join(routes, ",")}
	c := start(r.t, r.dir, fmt.Sprintf("server%d", i), r.natsBin, args, func(string) {}, r.unexpected)
	r.servers[i] = c
	r.children = append(r.children, c)
	_, err := c.await("ready", 30*time.Second)
	return err
}

func (r *run) urls(first int) string {
	var u []string
	for k := range 3 {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", r.ports[(first+k)%3][0]))
	}
	return strings.Join(u, ",")
}

// startNode starts node i on its data directory, as a new incarnation
// (its keys never repeat an earlier one's).
func (r *run) startNode(i int) *child {
	r.incarn[i]++
	name := fmt.Sprintf("node%d.%d", i, r.incarn[i])
	args := []string{"-dir", filepath.Join(r.dir, fmt.Sprintf("data%d", i)), "-urls", r.urls(i),
		"-secret", r.secret, "-prefix", fmt.Sprintf("n%d.%d", i, r.incarn[i]), "-writers", strconv.Itoa(r.writers)}
	c := start(r.t, r.dir, name, r.nodeBin, args, r.onWrite(name), r.unexpected)
	r.nodes[i] = c
	r.children = append(r.children, c)
	return c
}

// event is one step of the schedule: kill these at once, keep them down,
// restart them, then let the system run for pause.
type event struct {
	nodes, servers []int
	down, pause    time.Duration
}

func (e event) String() string {
	return fmt.Sprintf("kill nodes %v servers %v, down %v, then up %v", e.nodes, e.servers, e.down.Round(time.Millisecond), e.pause.Round(time.Millisecond))
}

// schedule draws events from seed until they fill d. It never kills all
// three nodes, and all three servers only when d is at least longRun.
func schedule(seed uint64, d time.Duration) []event {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	longDown := 20 * time.Second
	if d >= longRun {
		longDown = 45 * time.Second // sometimes past DeadMemberTimeout (30 s)
	}
	var evs []event
	for total := time.Duration(0); total < d; {
		var e event
		p := rng.IntN(100)
		switch {
		case p < 28: // one node
			e = event{nodes: rng.Perm(3)[:1], down: between(500*time.Millisecond, 5*time.Second)}
		case p < 43: // two nodes at once: the third loses its quorum
			e = event{nodes: rng.Perm(3)[:2], down: between(time.Second, 8*time.Second)}
		case p < 65: // one server
			e = event{servers: rng.Perm(3)[:1], down: between(500*time.Millisecond, 6*time.Second)}
		case p < 75: // a node and a server
			e = event{nodes: rng.Perm(3)[:1], servers: rng.Perm(3)[:1], down: between(time.Second, 6*time.Second)}
		case p < 83: // two servers
			e = event{servers: rng.Perm(3)[:2], down: between(time.Second, 4*time.Second)}
		case p < 95: // one node or server down long
			if rng.IntN(2) == 0 {
				e = event{nodes: rng.Perm(3)[:1], down: between(10*time.Second, longDown)}
			} else {
				e = event{servers: rng.Perm(3)[:1], down: between(10*time.Second, longDown)}
			}
		default:
			if d >= longRun { // every server
				e = event{servers: []int{0, 1, 2}, down: between(time.Second, 5*time.Second)}
			} else {
				e = event{nodes: rng.Perm(3)[:1], servers: rng.Perm(3)[:2], down: between(time.Second, 4*time.Second)}
			}
		}
		e.pause = between(2*time.Second, 8*time.Second)
		evs = append(evs, e)
		total += e.down + e.pause
	}
	return evs
}

// freePorts returns n distinct loopback ports that are free now, drawn at
// random below the kernel's ephemeral range, so that no outgoing connection
// takes one while its server is down.
func freePorts(t *testing.T, n int) []int {
	lo, hi := 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > lo+1000 {
				hi = v
			}
		}
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free loopback ports")
		}
		p := lo + rand.IntN(hi-lo)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports
}

// waitMesh waits until a message published on any server reaches a
// subscriber on every other: the routes are up.
func (r *run) waitMesh(timeout time.Duration) error {
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range 3 {
		nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", r.ports[i][0]), nats.NoReconnect())
		if err != nil {
			return err
		}
		conns = append(conns, nc)
	}
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for i := range 3 {
			for j := range 3 {
				if i == j {
					continue
				}
				subj := fmt.Sprintf("chaos.mesh.%d.%d", i, j)
				sub, err := conns[i].SubscribeSync(subj)
				if err != nil {
					return err
				}
				_ = conns[i].Flush()
				_ = conns[j].Publish(subj, nil)
				_ = conns[j].Flush()
				if _, err := sub.NextMsg(200 * time.Millisecond); err != nil {
					ok = false
				}
				_ = sub.Unsubscribe()
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the servers did not form a full mesh within %v", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// seqOf returns the sequence number that ends a key.
func seqOf(key string) uint64 {
	n, _ := strconv.ParseUint(key[strings.LastIndexByte(key, '.')+1:], 10, 64)
	return n
}

// waitOnline waits until every node running said it is online.
func (r *run) waitOnline(timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; i < 3; {
		c := r.nodes[i]
		switch {
		case c.online.Load():
			i++
			continue
		case time.Now().After(deadline):
			r.t.Fatalf("%s not online within %v", c.name, timeout)
		}
		select {
		case <-c.done:
			r.t.Fatalf("%s ended (%v) before it was online", c.name, c.exitErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// situation says, as the nodes last reported, which node leads and which
// server each node is on.
func (r *run) situation() string {
	var b strings.Builder
	for i, c := range r.nodes {
		at, _ := c.at.Load().(string)
		leader, url, _ := strings.Cut(at, " ")
		server := "?"
		for j, p := range r.ports {
			if strings.HasSuffix(url, fmt.Sprintf(":%d", p[0])) {
				server = fmt.Sprintf("s%d", j)
			}
		}
		lead := "?"
		for j, o := range r.nodes {
			if p, _ := o.peer.Load().(string); p != "" && p == leader {
				lead = fmt.Sprintf("n%d", j)
			}
		}
		if leader == "-" {
			lead = "-"
		}
		fmt.Fprintf(&b, " n%d@%s→%s", i, server, lead)
	}
	return "nodes on servers, and the leader each knows:" + b.String()
}

// replica is one node's dump.
type replica struct {
	version uint64
	data    []byte
	kv      map[string]uint64
}

func (r *run) dump(i int) (replica, error) {
	c := r.nodes[i]
	path := filepath.Join(r.dir, fmt.Sprintf("dump%d", i))
	if _, err := fmt.Fprintf(c.stdin, "dump %s\n", path); err != nil {
		return replica{}, err
	}
	line, err := c.await("dump ", 60*time.Second)
	if err != nil {
		return replica{}, err
	}
	f := strings.Fields(line)
	ver, _ := strconv.ParseUint(f[1], 10, 64)
	data, err := os.ReadFile(path)
	if err != nil {
		return replica{}, err
	}
	kv := map[string]uint64{}
	for l := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return replica{}, fmt.Errorf("node%d dump: bad line %q", i, l)
		}
		kv[k] = n
	}
	return replica{version: ver, data: data, kv: kv}, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// build builds the packages into dir, in one go build so they link in
// parallel.
func build(t *testing.T, dir string, pkgs ...string) {
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
}

// TestChaos runs the schedule, heals, and checks that every acknowledged
// write is on every replica with its value, that the replicas are
// identical, that no write outlived its bound, that no write refused as
// offline applied, and that no process died on its own.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and node processes for a minute or more")
	}
	began := time.Now()
	seed := *chaosSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -chaos.seed=%d), chaos for %v", seed, seed, *chaosDuration)
	dir := t.TempDir()
	if *chaosKeep != "" {
		dir = *chaosKeep
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	bins := t.TempDir()
	r := &run{
		t: t, dir: dir, writers: *chaosWriters,
		natsBin: filepath.Join(bins, "natsd"), nodeBin: filepath.Join(bins, "node"),
		secret: fmt.Sprintf("%016x%016x%016x%016x", rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()),
		writes: map[string]write{}, errText: map[string]int{},
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range r.children {
				t.Logf("--- %s stderr (last lines):\n%s", c.name, tail(c.stderr, 15))
			}
		}
	})
	build(t, bins, "./natsd", "./node")
	ports := freePorts(t, 6)
	for i := range 3 {
		r.ports[i] = [2]int{ports[2*i], ports[2*i+1]}
	}
	t.Logf("built in %v; servers on %v", time.Since(began).Round(time.Millisecond), r.ports)

	for i := range 3 {
		if err := r.startServer(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.waitMesh(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r.startNode(i)
	}
	r.waitOnline(90 * time.Second)

	evs := schedule(seed, *chaosDuration)
	chaosStart := time.Now()
	for k, e := range evs {
		if time.Since(chaosStart) >= *chaosDuration {
			break
		}
		t.Logf("%6.1fs event %d: %v (%s)", time.Since(chaosStart).Seconds(), k, e, r.situation())
		for _, i := range e.servers {
			r.servers[i].kill()
		}
		for _, i := range e.nodes {
			r.nodes[i].kill()
		}
		time.Sleep(e.down)
		for _, i := range e.servers {
			if err := r.startServer(i); err != nil {
				t.Fatalf("restart server%d: %v", i, err)
			}
		}
		for _, i := range e.nodes {
			r.startNode(i)
		}
		// The last event's pause ends with the chaos: healing waits anyway.
		time.Sleep(min(e.pause, max(0, *chaosDuration-time.Since(chaosStart))))
	}
	chaosTook := time.Since(chaosStart)

	// Heal: every server and node is up. Let the writers go on until every
	// node is online, then stop them all.
	if err := r.waitMesh(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	r.waitOnline(90 * time.Second)
	for i := range 3 {
		if _, err := fmt.Fprintln(r.nodes[i].stdin, "stop"); err != nil {
			t.Fatalf("node%d: %v", i, err)
		}
	}
	for i := range 3 {
		// Each writer ends within its write's bound.
		if _, err := r.nodes[i].await("stopped", writeBound+*chaosSlack+30*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	r.mu.Lock()
	writes := maps.Clone(r.writes)
	r.mu.Unlock()
	mustHave := func(w write) bool { return w.class == "ok" || w.class == "napp" }

	// Convergence: the replicas identical and holding every acknowledged
	// write, within a generous deadline.
	var reps [3]replica
	var why string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		why = ""
		for i := range 3 {
			rep, err := r.dump(i)
			if err != nil {
				t.Fatal(err)
			}
			reps[i] = rep
		}
		for i := 1; i < 3 && why == ""; i++ {
			if reps[i].version != reps[0].version || !bytes.Equal(reps[i].data, reps[0].data) {
				why = fmt.Sprintf("node%d at version %d with %d keys, node0 at %d with %d", i, reps[i].version, len(reps[i].kv), reps[0].version, len(reps[0].kv))
			}
		}
		for k, w := range writes {
			if why != "" {
				break
			}
			if _, ok := reps[0].kv[k]; mustHave(w) && !ok {
				why = fmt.Sprintf("acknowledged write %s (%s at version %d by %s) missing", k, w.class, w.version, w.node)
			}
		}
		if why == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	converged := time.Since(healed)

	if *chaosKeep != "" {
		var b strings.Builder
		for k, w := range writes {
			// start (s from the chaos start), latency (ms), class, version, key, error
			fmt.Fprintf(&b, "%.3f %d %s %d %s %s\n", w.start.Sub(chaosStart).Seconds(), w.lat.Milliseconds(), w.class, w.version, k, w.err)
		}
		if err := os.WriteFile(filepath.Join(dir, "writes"), []byte(b.String()), 0o600); err != nil {
			t.Error(err)
		}
	}

	// The report.
	count := map[string]int{}
	var slowest []string
	type slow struct {
		key string
		w   write
	}
	var all []slow
	var lost, wrongValue, appliedOffline, overBound []string
	appliedUnknown := 0
	for k, w := range writes {
		count[w.class]++
		all = append(all, slow{k, w})
		v, present := reps[0].kv[k]
		switch {
		case mustHave(w) && !present:
			lost = append(lost, k)
		case present && v != w.value:
			wrongValue = append(wrongValue, fmt.Sprintf("%s: %d, written %d", k, v, w.value))
		case w.class == "offline" && present:
			appliedOffline = append(appliedOffline, fmt.Sprintf("%s by %s after %v: %s", k, w.node, w.lat, w.err))
		case w.class == "other" && present:
			appliedUnknown++
		}
		if w.lat > writeBound+*chaosSlack {
			overBound = append(overBound, fmt.Sprintf("%s (%s) by %s at %.1fs took %v: %s", k, w.class, w.node, w.start.Sub(chaosStart).Seconds(), w.lat, w.err))
		}
	}
	// Each command has its own version, and a writer's writes, one after
	// another, apply in order.
	byVersion := map[uint64]string{}
	var versionClash, outOfOrder []string
	lastOf := map[string][2]uint64{} // writer -> seq, version of its last acknowledged write
	for k, w := range writes {
		if !mustHave(w) {
			continue
		}
		if other, dup := byVersion[w.version]; dup {
			versionClash = append(versionClash, fmt.Sprintf("%s and %s at %d", k, other, w.version))
		}
		byVersion[w.version] = k
	}
	for _, s := range slices.SortedFunc(maps.Keys(writes), func(a, b string) int { return cmp.Compare(seqOf(a), seqOf(b)) }) {
		w := writes[s]
		if !mustHave(w) {
			continue
		}
		writer := s[:strings.LastIndexByte(s, '.')]
		if last, ok := lastOf[writer]; ok && last[1] >= w.version {
			outOfOrder = append(outOfOrder, fmt.Sprintf("%s at %d after seq %d at %d", s, w.version, last[0], last[1]))
		}
		lastOf[writer] = [2]uint64{seqOf(s), w.version}
		if w.version > reps[0].version {
			outOfOrder = append(outOfOrder, fmt.Sprintf("%s at %d, beyond the replicas' version %d", s, w.version, reps[0].version))
		}
	}
	unreported := 0 // on a replica, but its node was killed before it said
	for k := range reps[0].kv {
		if _, ok := writes[k]; !ok {
			unreported++
		}
	}
	slices.SortFunc(all, func(a, b slow) int { return cmp.Compare(b.w.lat, a.w.lat) })
	over1s, over5s := 0, 0
	for _, s := range all {
		if s.w.lat > time.Second {
			over1s++
		}
		if s.w.lat > 5*time.Second {
			over5s++
		}
	}
	for _, s := range all[:min(8, len(all))] {
		slowest = append(slowest, fmt.Sprintf("%v %s %s by %s, sent at %.1fs %s", s.w.lat.Round(time.Millisecond), s.w.class, s.key, s.w.node, s.w.start.Sub(chaosStart).Seconds(), s.w.err))
	}
	acked := count["ok"] + count["napp"]
	t.Logf("seed %d: %d events in %v of chaos; %d writes acknowledged (%d ok, %d committed but not applied here), %d offline, %d outcome unknown (%d of them applied), %d applied unreported (node killed), %d lost; replicas converged %v after healing at version %d with %d keys; whole test %v",
		seed, len(evs), chaosTook.Round(time.Second), acked, count["ok"], count["napp"], count["offline"], count["other"], appliedUnknown, unreported, len(lost),
		converged.Round(time.Millisecond), reps[0].version, len(reps[0].kv), time.Since(began).Round(time.Second))
	t.Logf("%d writes took over 1s, %d over 5s; slowest (bound %v + slack %v, times from the chaos start):\n  %s",
		over1s, over5s, writeBound, *chaosSlack, strings.Join(slowest, "\n  "))
	var errs []string
	for e, n := range r.errText {
		errs = append(errs, fmt.Sprintf("%6d %s", n, e))
	}
	slices.Sort(errs)
	slices.Reverse(errs)
	t.Logf("write errors:\n%s", strings.Join(errs[:min(10, len(errs))], "\n"))

	if why != "" {
		t.Errorf("replicas did not converge within 3m after healing: %s", why)
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	if len(wrongValue) > 0 {
		t.Errorf("%d keys hold a value never written to them, e.g. %v", len(wrongValue), wrongValue[:min(5, len(wrongValue))])
	}
	if len(appliedOffline) > 0 {
		t.Errorf("%d writes failed with ErrOffline (documented: not applied) but applied, e.g. %v", len(appliedOffline), appliedOffline[:min(5, len(appliedOffline))])
	}
	if len(versionClash) > 0 {
		t.Errorf("%d acknowledged writes share a version, e.g. %v", len(versionClash), versionClash[:min(5, len(versionClash))])
	}
	if len(outOfOrder) > 0 {
		t.Errorf("%d acknowledged writes out of their writer's order, e.g. %v", len(outOfOrder), outOfOrder[:min(5, len(outOfOrder))])
	}
	if len(overBound) > 0 {
		t.Errorf("%d writes outlived their bound, e.g. %v", len(overBound), overBound[:min(5, len(overBound))])
	}
	if acked == 0 {
		t.Error("no write was acknowledged")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.died) > 0 {
		t.Errorf("processes failed on their own: %v", r.died)
	}
	if len(r.bad) > 0 {
		t.Errorf("malformed write reports: %v", r.bad[:min(5, len(r.bad))])
	}
}
