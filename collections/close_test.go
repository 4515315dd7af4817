package collections

import (
	"errors"
	"testing"

	"github.com/mosaik-go/mosaik/storage"
)

var errRelease = errors.New("test: release failed")

// failingRelease is in-memory storage whose Release fails.
type failingRelease struct{ storage.Provider }

func (f failingRelease) Stores(id [32]byte) (storage.Stores, error) {
	s, err := f.Provider.Stores(id)
	s.Release = func() error { return errRelease }
	return s, err
}

// A handle's Close returns what its group member's Close returned, and
// every later Close the same.
func TestHandleCloseReturnsGroupError(t *testing.T) {
	tn := newTestNet(t)
	cfg := testGroupConfig()
	cfg.Storage = failingRelease{storage.Memory()}
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
