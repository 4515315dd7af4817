package groups

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// TestBadStoredConfigurationIsReported: a durable node whose log holds a
// configuration entry that does not decode refuses to start with an error
// naming the group and the index, instead of panicking in Raft.
func TestBadStoredConfigurationIsReported(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	cfg := testConfig()
	rc, err := cfg.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := deriveID(c.key, (&counter{}).Signature(), &rc)

	db, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stores(id)
	if err != nil {
		t.Fatal(err)
	}
	good := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a", Suffrage: raft.Voter}}})
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: good},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte{0x80}},
		{Index: 3, Term: 1, Type: raft.LogConfiguration, Data: []byte{0xff, 0x00, 0x13}},
	}
	if err := st.Log.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := st.Release(); err != nil {
		t.Fatal(err)
	}

	ident, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := transport.New(context.Background(), transport.WithURL(c.url), transport.WithIdentity(ident))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cc := *cfg
	cc.Storage = db
	var g *Group[counterCmd, struct{}, int64]
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Join panicked: %v", p)
			}
		}()
		g, err = Join(n, c.key, &counter{}, &cc)
	}()
	if err == nil {
		g.Close()
		t.Fatal("Join over a bad configuration entry succeeded")
	}
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), id.Short()) || !regexp.MustCompile(`(index|entry) 3\b`).MatchString(err.Error()) {
		t.Fatalf("Join: %v; want ErrCorrupt naming group %s and index 3", err, id.Short())
	}
}
