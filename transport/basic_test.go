package transport

import (
	"context"
	"testing"
	"time"
)

func TestPubSubAcrossNodes(t *testing.T) {
	a, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(context.Background(), WithURL(a.URL()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan *Msg, 1)
	sub, err := b.Subscribe(b.Subject("x"), func(m *Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(100 * time.Millisecond)
	if err := a.Publish(a.Subject("x"), PeerID{}, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		t.Logf("%s %q", m.From.Short(), m.Data)
	case <-time.After(2 * time.Second):
		t.Fatal("nothing")
	}
}
