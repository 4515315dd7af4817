// Command durablenode is one member of a durable group, driven over stdin
// and stdout by groups' multi-process test (durable_process_test.go).
//
// It opens its data directory, connects to a NATS server as the node the
// directory names, joins the group named by -secret with an append-only
// log of numbers, and prints "peer <hex>". Then it reads commands, one per
// line, and answers each with one line:
//
//	put <v>   -> "ack <v> <index>" once committed, or "fail <v> <error>"
//	status    -> "status <leader?1:0> <leader hex or -> <applied>"
//	dump      -> "dump <n> <v1,v2,...>" (the values in applied order)
//	members   -> "members <peer>:<voter>,..."
//	quit      -> closes everything, prints "bye" and exits
//
// Puts run concurrently; answers may come in any order.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

type appendLog struct {
	mu   sync.Mutex
	vals []int64
}

type put struct{ V int64 }

func (m *appendLog) Signature() string { return "test.durablenode.appendlog.v1" }

func (m *appendLog) Apply(c put, _ rsm.ApplyContext) {
	m.mu.Lock()
	m.vals = append(m.vals, c.V)
	m.mu.Unlock()
}

func (m *appendLog) Query(struct{}) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int64(nil), m.vals...)
}

func main() {
	dir := flag.String("dir", "", "data directory")
	url := flag.String("url", "", "NATS server URL")
	secret := flag.String("secret", "", "group secret")
	flag.Parse()
	if err := run(*dir, *url, *secret); err != nil {
		fmt.Fprintln(os.Stderr, "durablenode:", err)
		os.Exit(1)
	}
}

func run(dir, url, secret string) error {
	db, err := storage.Open(dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ident, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		return err
	}
	net, err := transport.New(context.Background(), transport.WithURL(url), transport.WithIdentity(ident))
	if err != nil {
		return err
	}
	defer net.Close()
	sm := &appendLog{}
	g, err := groups.Join(net, groups.KeyFromSecret(secret), sm, &groups.Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   200 * time.Millisecond,
		BootstrapDelay:    500 * time.Millisecond,
		DeadMemberTimeout: time.Minute, // the killed node is expected back
		ForwardTimeout:    3 * time.Second,
		QueryTimeout:      3 * time.Second,
		Storage:           db,
	})
	if err != nil {
		return err
	}
	defer g.Close()

	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Printf(format+"\n", args...)
		outMu.Unlock()
	}
	say("peer %s", net.ID())
	var wg sync.WaitGroup
	defer wg.Wait()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "put":
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				say("fail %s %v", f[1], err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				idx, err := g.Execute(ctx, put{V: v})
				if err != nil {
					say("fail %d %s", v, strings.ReplaceAll(err.Error(), "\n", " "))
					return
				}
				say("ack %d %d", v, idx)
			}()
		case "status":
			leader := "-"
			if l, ok := g.Leader(); ok {
				leader = l.String()
			}
			isLeader := 0
			if g.IsLeader() {
				isLeader = 1
			}
			say("status %d %s %d", isLeader, leader, g.Applied())
		case "dump":
			vals := sm.Query(struct{}{})
			s := make([]string, len(vals))
			for i, v := range vals {
				s[i] = strconv.FormatInt(v, 10)
			}
			say("dump %d %s", len(vals), strings.Join(s, ","))
		case "members":
			var s []string
			for _, m := range g.Members() {
				s = append(s, fmt.Sprintf("%s:%v", m.Peer, m.Voter))
			}
			say("members %s", strings.Join(s, ","))
		case "quit":
			wg.Wait()
			if err := g.Close(); err != nil {
				return err
			}
			say("bye")
			return nil
		default:
			say("error unknown command %q", f[0])
		}
	}
	return in.Err()
}
