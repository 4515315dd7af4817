package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/transport"
)

// trustInspect runs the tool as a user would, through Main.
func trustInspect(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestTrustInspectSealed: the inspect tool cannot read a sealed collection
// without its secret (it says the collection is sealed, and prints nothing
// of it), nor with a wrong one; with the secret it prints the contents.
func TestTrustInspectSealed(t *testing.T) {
	// Only the flags of each run may give a secret.
	t.Setenv(envSecret, "")
	t.Setenv(envPassphrase, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret := transport.NewSecret()
	hub, err := transport.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	nets := []*transport.Network{hub}
	for range 2 {
		n, err := transport.New(ctx, transport.WithURL(hub.URL()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nets = append(nets, n)
	}
	cfg := &groups.Config{
		HeartbeatInterval: 50 * time.Millisecond,
		ElectionTimeout:   500 * time.Millisecond,
		BootstrapDelay:    300 * time.Millisecond,
		DeadMemberTimeout: 2 * time.Second,
	}
	var ws []*collections.MapWriter[string, string]
	for _, n := range nets {
		w, err := collections.NewMapWriter[string, string](n, "secrets", collections.WithSecret(secret), collections.WithGroupConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := w.When().Online(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	mark := "MARKER-" + hex.EncodeToString(b)
	var v collections.Version
	for _, kv := range [][2]string{{"alpha", mark}, {"beta", "two"}} {
		if v, err = ws[0].Insert(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range ws {
		if err := w.When().Reaches(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	url := hub.URL()
	noContents := func(what, out, errOut string) {
		t.Helper()
		for _, s := range []string{mark, "beta", "two"} {
			if strings.Contains(out, s) || strings.Contains(errOut, s) {
				t.Errorf("%s: the output shows %q:\nstdout:\n%s\nstderr:\n%s", what, s, out, errOut)
			}
		}
	}

	t.Run("no secret", func(t *testing.T) {
		code, out, errOut := trustInspect("dump", "secrets", "--url", url)
		if code == 0 {
			t.Errorf("exit 0, want an error; stdout:\n%s", out)
		}
		if !strings.Contains(errOut, "sealed") {
			t.Errorf("stderr %q does not say the collection is sealed", errOut)
		}
		noContents("without a secret", out, errOut)
	})

	t.Run("wrong secret", func(t *testing.T) {
		code, out, errOut := trustInspect("dump", "secrets", "--url", url, "--secret", transport.NewSecret().Hex())
		if code == 0 {
			t.Errorf("exit 0, want an error; stdout:\n%s", out)
		}
		if !strings.Contains(errOut, "sealed") {
			t.Errorf("stderr %q does not say the collection is sealed", errOut)
		}
		noContents("with a wrong secret", out, errOut)
	})

	t.Run("secret", func(t *testing.T) {
		code, out, errOut := trustInspect("dump", "secrets", "--url", url, "--secret", secret.Hex())
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		out = strings.Join(strings.Fields(out), " ") // columns are aligned with spaces
		for _, want := range []string{"map secrets [string,string] at version", "2 entries",
			`"alpha" "` + mark + `"`, `"beta" "two"`} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout does not show %q:\n%s", want, out)
			}
		}
	})
}
