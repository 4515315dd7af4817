package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

// opNode is a node of the operator tests: its network and its writer.
type opNode struct {
	net *transport.Network
	w   *collections.MapWriter[string, int]
}

// opNodes starts n nodes on hub's server, each writing the map name.
func opNodes(t *testing.T, ctx context.Context, hub *transport.Network, n int, name string, opts ...collections.Option) []*opNode {
	t.Helper()
	var out []*opNode
	for range n {
		net, err := transport.New(ctx, transport.WithURL(hub.URL()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { net.Close() })
		w, err := collections.NewMapWriter[string, int](net, name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		out = append(out, &opNode{net: net, w: w})
	}
	for _, nd := range out {
		if err := nd.w.When().Online(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// kill stops the nodes' networks at once, as if their processes died.
func kill(nodes ...*opNode) {
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.net.Close() }()
	}
	wg.Wait()
}

func opHub(t *testing.T, ctx context.Context) *transport.Network {
	t.Helper()
	t.Setenv(envSecret, "")
	t.Setenv(envPassphrase, "")
	hub, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	return hub
}

// TestInspectRecover: a sealed map of three writers loses two at once.
// inspect recover refuses while they are heard, then reforms the group
// from the survivor, which takes writes again; snapshot save writes a file
// that snapshot verify accepts, and refuses once a byte changed.
func TestInspectRecover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hub := opHub(t, ctx)
	secret := transport.NewSecret()
	nodes := opNodes(t, ctx, hub, 3, "ledger", collections.WithSecret(secret), collections.WithGroupConfig(liveConfig()))
	var v collections.Version
	var err error
	for i, k := range []string{"a", "b", "c"} {
		if v, err = nodes[0].w.Insert(ctx, k, i); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if err := nd.w.When().Reaches(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	url := hub.URL()
	args := func(a ...string) []string { return append(a, "--url", url, "--secret", secret.Hex()) }

	runInspectFails(t, 1, []string{"recover", "ledger", "--url", url}, "sealed")
	code, out, errOut := runInspect(t, args("recover", "ledger")...)
	if code != 1 || !strings.Contains(errOut, "majority of the voters is reachable") || !strings.Contains(out, "not recovered") {
		t.Fatalf("recover with every member alive: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	survivor := nodes[0]
	kill(nodes[1], nodes[2])
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	if _, err := survivor.w.Insert(wctx, "lost", 1); err == nil {
		t.Fatal("a write committed on one member of three")
	}
	wcancel()

	pollUntil(t, ctx, "inspect recover to succeed", func() bool {
		code, out, errOut = runInspect(t, args("recover", "ledger")...)
		if code != 0 && !strings.Contains(errOut, "majority") {
			t.Fatalf("recover: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		return code == 0
	})
	for _, want := range []string{"recovered map/ledger on " + survivor.net.ID().Short(), "voters before:    3", "reachable:        1 (" + survivor.net.ID().Short() + ")", "may be lost:"} {
		if !strings.Contains(out, want) {
			t.Errorf("recover printed no %q:\n%s", want, out)
		}
	}
	if v, err = survivor.w.Insert(ctx, "after", 42); err != nil {
		t.Fatalf("write after recover: %v", err)
	}

	file := filepath.Join(t.TempDir(), "ledger.bak")
	out = runInspectOK(t, args("snapshot", "save", "ledger", file)...)
	if !strings.Contains(out, "saved "+file+": map ledger [string,int] at version") || !strings.Contains(out, "entries") {
		t.Errorf("snapshot save printed:\n%s", out)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	out = runInspectOK(t, "snapshot", "verify", file)
	n := survivor.w.Len()
	if !strings.Contains(out, "verified "+file) || !strings.Contains(out, " "+strconv.Itoa(n)+" entries") {
		t.Errorf("snapshot verify printed (want %d entries):\n%s", n, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.bak")
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)-40] ^= 1 // in the last record, before the end mark and the checksum
	if err := os.WriteFile(bad, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	runInspectFails(t, 1, []string{"snapshot", "verify", bad}, "not a valid backup")
	if err := os.WriteFile(bad, b[:len(b)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	runInspectFails(t, 1, []string{"snapshot", "verify", bad}, "truncated")
}

// TestInspectRemoveMember: the leader refuses to remove a member it heard
// recently unless --force; an open collection takes operator commands only
// from handles opened with WithOperatorCommands.
func TestInspectRemoveMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hub := opHub(t, ctx)
	cfg := liveConfig()
	cfg.DeadMemberTimeout = time.Minute // only the operator removes
	nodes := opNodes(t, ctx, hub, 3, "open", collections.WithGroupConfig(cfg), collections.WithOperatorCommands())
	opNodes(t, ctx, hub, 1, "plain", collections.WithGroupConfig(cfg))
	url := hub.URL()

	runInspectFails(t, 1, []string{"recover", "plain", "--url", url}, "has no secret", "WithOperatorCommands")

	var leader transport.PeerID
	pollUntil(t, ctx, "a leader", func() bool {
		var ok bool
		leader, ok = nodes[0].w.Leader()
		return ok
	})
	var gone *opNode
	for _, nd := range nodes {
		if nd.net.ID() != leader {
			gone = nd
			break
		}
	}
	kill(gone)
	prefix := gone.net.ID().String()[:10]
	// The group waits on the leader's answer: give its survey time to see
	// every member.
	pollUntil(t, ctx, "remove-member to refuse a member heard recently", func() bool {
		code, _, errOut := runInspect(t, "remove-member", "open", prefix, "--url", url)
		return code == 1 && strings.Contains(errOut, "member is alive")
	})
	out := runInspectOK(t, "remove-member", "open", prefix, "--force", "--url", url)
	if !strings.Contains(out, "removed "+gone.net.ID().Short()+" from map/open") {
		t.Errorf("remove-member printed:\n%s", out)
	}
	pollUntil(t, ctx, "two members left", func() bool {
		for _, nd := range nodes {
			if nd.net.ID() == leader {
				var ms []groups.Member
				for _, m := range nd.w.Members() {
					if m.Voter {
						ms = append(ms, m)
					}
				}
				return len(ms) == 2
			}
		}
		return false
	})
	runInspectFails(t, 1, []string{"remove-member", "open", "ffffffffff", "--url", url}, "no member")
}
