package transport

import (
	"context"
	"fmt"
	"testing"
)

// TestListenRestartInProcess: a node of this process reaches another's
// embedded server, started WithListen. That node stops and another starts
// the server again at the same address (what WithListen is for): the first
// node must reconnect to it. An in-process connection is bound to the
// server it was made to, so reconnecting to the stopped one never works.
func TestListenRestartInProcess(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	first, err := New(ctx, WithListen(addr))
	if err != nil {
		t.Fatal(err)
	}
	client := newNet(t, WithURL(first.URL()))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	newNet(t, WithListen(addr))
	waitUntil(t, "the client reconnected to the restarted server", func() bool {
		return client.nc.IsConnected()
	})
	if got := client.nc.ConnectedAddr(); got != "pipe" {
		t.Errorf("reconnected through %q, want in process", got)
	}
}
