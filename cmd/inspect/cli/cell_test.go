package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/transport"
)

// liveNet is a network on an embedded server of its own, closed when the
// test ends.
func liveNet(t *testing.T, ctx context.Context) *transport.Network {
	t.Helper()
	n, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// liveCellOnce opens a Cell "flag" and a Once "genesis" on a network of
// their own and waits until both are online.
func liveCellOnce(t *testing.T, ctx context.Context) (*transport.Network, *collections.CellWriter[string], *collections.OnceWriter[string]) {
	t.Helper()
	n := liveNet(t, ctx)
	opt := collections.WithGroupConfig(liveConfig())
	c, err := collections.NewCellWriter[string](n, "flag", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	o, err := collections.NewOnceWriter[string](n, "genesis", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	for _, w := range []interface{ When() *collections.When }{c, o} {
		if err := w.When().Online(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n, c, o
}

// inspect dump shows a live Cell's and Once's value.
func TestLiveDumpCellOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, c, o := liveCellOnce(t, ctx)
	if _, err := c.Set(ctx, "cell-value-on"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Set(ctx, "once-value-b0"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"flag": "cell-value-on", "genesis": "once-value-b0"} {
		out := runInspectOK(t, "dump", name, "--url", n.URL())
		t.Logf("inspect dump %s:\n%s", name, out)
		if !strings.Contains(out, want) {
			t.Errorf("inspect dump %s:\n%s\nwant %q in it", name, out, want)
		}
	}
}

// inspect watch shows a live Cell's set and clear, in order, and a Once's
// decision.
func TestLiveWatchCellOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, c, o := liveCellOnce(t, ctx)
	watch := func(name string, write func(), want ...string) string {
		t.Helper()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() { done <- Run(wctx, []string{"watch", name, "--url", n.URL()}, &out, &errOut) }()
		pollUntil(t, ctx, "the watch to start", func() bool { return strings.Contains(out.String(), "watching") })
		write()
		pollUntil(t, ctx, "the changes to show", func() bool {
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					return false
				}
			}
			return true
		})
		wcancel()
		if code := <-done; code != 0 {
			t.Fatalf("watch %s exit %d: %s", name, code, errOut.String())
		}
		return out.String()
	}
	got := watch("flag", func() {
		if _, err := c.Set(ctx, "cell-on"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Clear(ctx); err != nil {
			t.Fatal(err)
		}
	}, "cell-on", "clear")
	t.Logf("inspect watch flag:\n%s", got)
	if strings.Index(got, "cell-on") > strings.LastIndex(got, "clear") {
		t.Errorf("the clear shows before the set:\n%s", got)
	}
	got = watch("genesis", func() {
		if _, _, err := o.Set(ctx, "once-first"); err != nil {
			t.Fatal(err)
		}
	}, "once-first")
	t.Logf("inspect watch genesis:\n%s", got)
}
