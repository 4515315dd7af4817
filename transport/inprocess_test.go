package transport

import (
	"context"
	"testing"
)

// BenchmarkRequest is one request and its reply between two nodes on one
// embedded server: the hop every Raft replication and forwarded command
// pays.
func BenchmarkRequest(b *testing.B) {
	a := newNet(b)
	c := join(b, a)
	subscribe(b, c, "echo", func(m *Msg) { _ = m.Respond(m.Data) })
	data := make([]byte, 128)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.requestPlain(ctx, "echo", c.ID(), data); err != nil {
			b.Fatal(err)
		}
	}
}

// Nodes joining a server this process embeds connect in process; their URL
// is still the server's, for nodes of other processes. Once the server
// shuts down, its URL is forgotten.
func TestEmbeddedServerJoinsInProcess(t *testing.T) {
	a, err := New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	url := a.URL()
	c := join(t, a)
	if got := c.nc.ConnectedAddr(); got != "pipe" {
		t.Fatalf("joined through %q, want in process", got)
	}
	if c.URL() != url {
		t.Fatalf("joined node's URL %q, want %q", c.URL(), url)
	}
	subscribe(t, c, "echo", func(m *Msg) { _ = m.Respond(m.Data) })
	if r, err := a.requestPlain(t.Context(), "echo", c.ID(), []byte("hi")); err != nil || string(r) != "hi" {
		t.Fatalf("request: %q %v", r, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := embedded.Load(url); ok {
		t.Fatal("a shut down server is still registered")
	}
}
