package groups

import (
	"errors"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/internal/storagetest"
	"github.com/mosaik-go/mosaik/storage"
)

var errRelease = errors.New("test: release failed")

// Close returns what failed while the member stopped (here releasing its
// storage), and every later Close returns the same.
func TestCloseReturnsStorageError(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.Storage = storagetest.FailRelease(storage.Memory(), errRelease)
	nd := c.add(cfg)
	if err := nd.g.When().Online(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	err := nd.g.Close()
	if !errors.Is(err, errRelease) {
		t.Fatalf("Close = %v, want the storage's release error", err)
	}
	if again := nd.g.Close(); !errors.Is(again, errRelease) {
		t.Errorf("second Close = %v, want the first one's error", again)
	}
}

// A member stopped by its network closing keeps the error for Close.
func TestCloseAfterNetworkReturnsStorageError(t *testing.T) {
	c := newCluster(t)
	cfg := testConfig()
	cfg.Storage = storagetest.FailRelease(storage.Memory(), errRelease)
	nd := c.add(cfg)
	if err := nd.net.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nd.g.Close(); !errors.Is(err, errRelease) {
		t.Fatalf("Close after the network closed = %v, want the storage's release error", err)
	}
}
