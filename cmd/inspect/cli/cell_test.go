package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/transport"
)

// inspect dump shows a live Cell's and Once's value.
func TestLiveDumpCellOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	opt := collections.WithGroupConfig(liveConfig())
	c, err := collections.NewCellWriter[string](n, "flag", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o, err := collections.NewOnceWriter[string](n, "genesis", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, w := range []interface{ When() *collections.When }{c, o} {
		if err := w.When().Online(ctx); err != nil {
			t.Fatal(err)
		}
	}
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
