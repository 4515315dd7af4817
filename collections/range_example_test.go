package collections_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/transport"
)

// Reading and watching the keys under a prefix, in key order.
func ExamplePrefix() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := transport.New(ctx)
	if err != nil {
		panic(err)
	}
	defer n.Close()
	m, err := collections.NewMapWriter[string, int](n, "sessions", fast(nil))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	if err := m.When().Online(ctx); err != nil {
		panic(err)
	}
	users := collections.Prefix("user/")
	for _, k := range []string{"user/bob", "host/a", "user/ann", "user0", "user/cy"} {
		if _, err := m.Insert(ctx, k, len(k)); err != nil {
			panic(err)
		}
	}
	for k, v := range m.Range(users) {
		fmt.Println(k, v)
	}
	for k := range m.Backward(collections.Between("user/ann", "user/cy")) {
		fmt.Println("backward", k)
	}
	// The watch starts when the loop does: first the keys under the
	// prefix as they are, then their changes.
	for ev, err := range m.Watch(ctx, collections.WatchRange(users), collections.WithInitial()) {
		if err != nil {
			panic(err)
		}
		fmt.Print(ev.Kind)
		for _, c := range ev.Changes {
			fmt.Print(" ", c.Op, " ", c.Key)
		}
		fmt.Println()
		switch ev.Kind {
		case collections.CaughtUp:
			for _, k := range []string{"host/b", "user/dee"} {
				if _, err := m.Insert(ctx, k, len(k)); err != nil {
					panic(err)
				}
			}
		case collections.Changed:
			return
		}
	}
	// Output:
	// user/ann 8
	// user/bob 8
	// user/cy 7
	// backward user/bob
	// backward user/ann
	// initial insert user/ann insert user/bob insert user/cy
	// caught-up
	// changed insert user/dee
}
