package groups

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// A data directory copied to a second machine (or restored from a backup
// while the original runs) holds the same node key. The copy must not join
// as a second live member with the original's identity.
func TestCopiedDataDirectoryRefused(t *testing.T) {
	c := newCluster(t)
	dir := filepath.Join(t.TempDir(), "node")
	db, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	original := startDurable(t, c, dir, &counter{}, nil)
	onlineAll(t, original)
	db2, err := storage.Open(copied, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if db2.NodeID() != original.db.NodeID() {
		t.Fatal("the copy names another node")
	}
	ident, err := transport.IdentityFromSeed(db2.NodeKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := transport.New(ctxT(t, 20*time.Second), transport.WithURL(c.url), transport.WithIdentity(ident))
	if err == nil {
		n.Close()
		t.Fatal("the copy joined the network as a second live node")
	}
	if !errors.Is(err, transport.ErrDuplicateIdentity) {
		t.Fatalf("err = %v, want ErrDuplicateIdentity", err)
	}
	if d := original.net.Stats().Duplicates; d != 1 {
		t.Fatalf("the original counted %d duplicates, want 1", d)
	}
}
