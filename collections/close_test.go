package collections

import (
	"errors"
	"testing"

	"github.com/mosaik-go/mosaik/internal/storagetest"
	"github.com/mosaik-go/mosaik/storage"
)

var errRelease = errors.New("test: release failed")

// A handle's Close returns what its group member's Close returned, and
// every later Close the same.
func TestHandleCloseReturnsGroupError(t *testing.T) {
	tn := newTestNet(t)
	cfg := testGroupConfig()
	cfg.Storage = storagetest.FailRelease(storage.Memory(), errRelease)
	w, err := NewMapWriter[string, int](tn.node(), "c", WithGroupConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	online(t, w)
	if err := closeOf(t, w); !errors.Is(err, errRelease) {
		t.Fatalf("Close = %v, want the storage's release error", err)
	}
	if err := closeOf(t, w); !errors.Is(err, errRelease) {
		t.Errorf("second Close = %v, want the first one's error", err)
	}
}
