package storage_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// A node opens its data directory once, uses the key kept there as its
// network identity, and hands the DB to every group it joins
// (groups.Config.Storage, or collections.WithGroupConfig). The directory is
// the node: the same key and the same groups' logs on every start.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "mosaik-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	db, err := storage.Open(dir, nil) // nil *Options: defaults, fsync on every commit
	if err != nil {
		panic(err)
	}
	id, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		panic(err)
	}
	// transport.New(ctx, transport.WithIdentity(id)) joins the network as
	// this node, and groups.Config{Storage: db} keeps its groups here.
	fmt.Println("durable:", db.Durable())
	fmt.Println("peer id is the directory's:", id.PeerID() == transport.PeerID(db.NodeID()))

	// One process at a time: a second Open of the directory fails.
	_, err = storage.Open(dir, nil)
	fmt.Println("second open:", errors.Is(err, storage.ErrLocked))

	first := db.NodeID()
	if err := db.Close(); err != nil { // after every group using it has closed
		panic(err)
	}
	db, err = storage.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	fmt.Println("same node after reopening:", db.NodeID() == first)
	// Output:
	// durable: true
	// peer id is the directory's: true
	// second open: true
	// same node after reopening: true
}
