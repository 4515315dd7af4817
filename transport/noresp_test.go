package transport

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A request to a subject nobody listens on fails at once with
// ErrUnreachable, without waiting for its deadline.
func TestRequestToNobodyFailsFast(t *testing.T) {
	a, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = a.requestPlain(ctx, a.Subject("nobody"), NewPeerID(), []byte("x"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("request to nobody: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
