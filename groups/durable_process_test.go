package groups

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/transport"
)

// proc is one durablenode process (testdata/durablenode) and what it said.
type proc struct {
	t     *testing.T
	name  string
	dir   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	peer  string
	done  chan struct{} // closed when its output ends

	answers chan string // status, dump and members lines, in order

	mu          sync.Mutex
	outstanding int // puts sent and not answered
	resolved    *sync.Cond
}

// procRun is the shared record of a multi-process run.
type procRun struct {
	t      *testing.T
	bin    string
	url    string
	secret string

	mu    sync.Mutex
	acked map[int64]string // value -> who acknowledged it
	fails int
}

func (r *procRun) start(name, dir string) *proc {
	r.t.Helper()
	cmd := exec.Command(r.bin, "-dir", dir, "-url", r.url, "-secret", r.secret)
	logf, err := os.Create(filepath.Join(r.t.TempDir(), name+".stderr"))
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	p := &proc{t: r.t, name: name, dir: dir, cmd: cmd, stdin: stdin, done: make(chan struct{}), answers: make(chan string, 64)}
	p.resolved = sync.NewCond(&p.mu)
	peer := make(chan string, 1)
	go func() {
		defer close(p.done)
		defer logf.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "peer":
				peer <- f[1]
			case len(f) >= 3 && f[0] == "ack":
				v, _ := strconv.ParseInt(f[1], 10, 64)
				r.mu.Lock()
				r.acked[v] = name
				r.mu.Unlock()
				p.answered()
			case len(f) >= 2 && f[0] == "fail":
				r.mu.Lock()
				r.fails++
				r.mu.Unlock()
				p.answered()
			case len(f) >= 1 && (f[0] == "status" || f[0] == "dump" || f[0] == "members"):
				p.answers <- line
			}
		}
		p.mu.Lock()
		p.outstanding = -1 // no more answers will come
		p.resolved.Broadcast()
		p.mu.Unlock()
	}()
	select {
	case p.peer = <-peer:
	case <-p.done:
		r.t.Fatalf("%s exited before joining; see %s.stderr", name, name)
	case <-time.After(30 * time.Second):
		r.t.Fatalf("%s did not start", name)
	}
	r.t.Cleanup(p.kill)
	return p
}

func (p *proc) answered() {
	p.mu.Lock()
	p.outstanding--
	p.resolved.Broadcast()
	p.mu.Unlock()
}

// put sends a write, waiting while max writes are outstanding. It reports
// false once the process is gone.
func (p *proc) put(v int64, max int) bool {
	p.mu.Lock()
	for p.outstanding >= max {
		p.resolved.Wait()
	}
	if p.outstanding < 0 {
		p.mu.Unlock()
		return false
	}
	p.outstanding++
	p.mu.Unlock()
	if _, err := fmt.Fprintf(p.stdin, "put %d\n", v); err != nil {
		p.answered()
		return false
	}
	return true
}

func (p *proc) inflight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outstanding
}

// drain waits until every write sent is answered, or the process is gone.
func (p *proc) drain() {
	p.mu.Lock()
	for p.outstanding > 0 {
		p.resolved.Wait()
	}
	p.mu.Unlock()
}

// ask sends a query command and returns its answer line.
func (p *proc) ask(cmd string) (string, bool) {
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		return "", false
	}
	select {
	case line := <-p.answers:
		return line, true
	case <-p.done:
		return "", false
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: no answer to %q", p.name, cmd)
		return "", false
	}
}

// status returns whether it leads, the leader it knows, and its applied
// index.
func (p *proc) status() (bool, string) {
	line, ok := p.ask("status")
	if !ok {
		return false, "-"
	}
	f := strings.Fields(line)
	return f[1] == "1", f[2]
}

func (p *proc) dump() []int64 {
	line, ok := p.ask("dump")
	if !ok {
		return nil
	}
	f := strings.Fields(line)
	var out []int64
	if len(f) == 3 {
		for _, s := range strings.Split(f[2], ",") {
			v, _ := strconv.ParseInt(s, 10, 64)
			out = append(out, v)
		}
	}
	return out
}

// kill sends SIGKILL and reaps the process. Idempotent.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.cmd.Wait()
}

// quit asks the process to close cleanly and waits for it.
func (p *proc) quit() {
	fmt.Fprintln(p.stdin, "quit")
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not quit", p.name)
		p.kill()
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Errorf("%s exited: %v", p.name, err)
	}
}

// TestDurableMultiProcess runs three member processes on one NATS server
// (embedded in this test), streams acknowledged writes, kill -9s the
// leader mid-stream, restarts it on its data directory, and checks that
// every acknowledged write is on every node, in one order, exactly once,
// and that the restarted node is the same member.
func TestDurableMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := filepath.Join(t.TempDir(), "durablenode")
	build := exec.Command("go", "build", "-o", bin, "./testdata/durablenode")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv, err := transport.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	run := &procRun{t: t, bin: bin, url: srv.URL(), secret: "durable-multiprocess-" + NewKey().String()[:8], acked: map[int64]string{}}

	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	procs := make([]*proc, 3)
	for i, dir := range dirs {
		procs[i] = run.start(fmt.Sprintf("node%d", i), dir)
	}
	leaderIdx := func(ps []*proc) int {
		idx := -1
		waitFor(t, 30*time.Second, "the processes to agree on a leader", func() bool {
			var leader string
			for _, p := range ps {
				_, l := p.status()
				if l == "-" || (leader != "" && l != leader) {
					return false
				}
				leader = l
			}
			for i, p := range ps {
				if p.peer == leader {
					idx = i
				}
			}
			return idx >= 0
		})
		return idx
	}
	li := leaderIdx(procs)
	victim := procs[li]
	t.Logf("leader is %s (%s)", victim.name, victim.peer[:8])

	// Stream writes round-robin to every live process, at most 8 in flight
	// per process; kill the leader once 150 are acknowledged.
	const total = 600
	killed := false
	for v := int64(1); v <= total; v++ {
		run.mu.Lock()
		n := len(run.acked)
		run.mu.Unlock()
		if inflight := victim.inflight(); !killed && n >= 150 && inflight > 0 {
			victim.kill()
			killed = true
			t.Logf("killed %s with %d writes acknowledged and %d of its own in flight", victim.name, n, inflight)
		}
		for k := range procs {
			p := procs[(int(v)+k)%3]
			if killed && p == victim {
				continue
			}
			if p.put(v, 8) {
				break
			}
		}
	}
	if !killed {
		t.Fatal("the stream ended before the leader was killed")
	}
	for _, p := range procs {
		if p != victim {
			p.drain()
		}
	}
	run.mu.Lock()
	acked := make([]int64, 0, len(run.acked))
	for v := range run.acked {
		acked = append(acked, v)
	}
	fails := run.fails
	run.mu.Unlock()
	slices.Sort(acked)
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	if len(acked) < total/2 {
		t.Fatalf("only %d of %d writes acknowledged", len(acked), total)
	}

	restarted := run.start(victim.name+"-restarted", victim.dir)
	if restarted.peer != victim.peer {
		t.Fatalf("restarted node is %s, was %s", restarted.peer, victim.peer)
	}
	procs[li] = restarted
	leaderIdx(procs)

	var dumps [][]int64
	waitFor(t, 60*time.Second, "every acknowledged write on every node, in one order", func() bool {
		dumps = dumps[:0]
		for _, p := range procs {
			dumps = append(dumps, p.dump())
		}
		for _, d := range dumps {
			if !slices.Equal(d, dumps[0]) {
				return false
			}
			set := map[int64]bool{}
			for _, v := range d {
				set[v] = true
			}
			for _, v := range acked {
				if !set[v] {
					return false
				}
			}
		}
		return true
	})
	seen := map[int64]bool{}
	for _, v := range dumps[0] {
		if seen[v] {
			t.Fatalf("value %d applied twice", v)
		}
		seen[v] = true
	}
	t.Logf("every node holds %d values, all %d acknowledged among them", len(dumps[0]), len(acked))

	line, _ := restarted.ask("members")
	members := strings.Split(strings.Fields(line)[1], ",")
	if len(members) != 3 {
		t.Fatalf("members after restart: %v", members)
	}
	for _, m := range members {
		peer, voter, _ := strings.Cut(m, ":")
		if !slices.ContainsFunc(procs, func(p *proc) bool { return p.peer == peer }) || voter != "true" {
			t.Fatalf("member %s after restart; want the same three voters: %v", m, members)
		}
	}
	for _, p := range procs {
		p.quit()
	}
}
