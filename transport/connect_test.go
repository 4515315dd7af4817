package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveOn starts a NATS server on port and stops it at the end of the test.
func serveOn(t *testing.T, port int) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(waitTimeout) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
}

// A node that starts while its server restarts waits for it, within its
// context, instead of failing at once.
func TestNewWaitsForServer(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		n, err := New(ctx, WithURL(url))
		if err == nil {
			n.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("New returned before the server started: %v", err)
	case <-time.After(300 * time.Millisecond): // the server starts late on purpose
	}
	serveOn(t, port)
	if err := recvErr(t, done); err != nil {
		t.Fatalf("New after the server came up: %v", err)
	}
}

// WithURL takes several servers; New connects to one that answers.
func TestWithSeveralURLs(t *testing.T) {
	up := freePort(t)
	serveOn(t, up)
	dead := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	n := newNet(t, WithURL(dead, fmt.Sprintf("nats://127.0.0.1:%d", up)))
	if n.URL() != fmt.Sprintf("nats://127.0.0.1:%d", up) {
		t.Fatalf("connected to %s", n.URL())
	}
}

// Where no server ever answers, New gives up when its context ends.
func TestNewGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(ctx, WithURL(fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))))
	if err == nil {
		t.Fatal("New connected to nothing")
	}
	if !errors.Is(err, nats.ErrNoServers) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one saying no server answered until the context ended", err)
	}
	// Its context ends after 500 ms; the bound is generous for a loaded
	// machine.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("New took %v to give up", took)
	}
}

// A node whose embedded server is given routes waits, within routeWait,
// until they are up before it joins anything: started alone it could found a
// group of its own.
func TestNewWaitsForRoute(t *testing.T) {
	clusterPort := freePort(t)
	route := fmt.Sprintf("nats-route://127.0.0.1:%d", clusterPort)
	done := make(chan *Network, 1)
	go func() {
		n, err := New(context.Background(), WithRoutes(route))
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	select {
	case n := <-done:
		if n != nil {
			n.Close()
		}
		t.Fatal("New returned before any route was up")
	case <-time.After(300 * time.Millisecond): // the other server starts late on purpose
	}
	other, err := New(context.Background(), WithClusterListen(fmt.Sprintf("127.0.0.1:%d", clusterPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	n := <-done
	if n == nil {
		return
	}
	defer n.Close()
	if n.srv.NumRoutes() == 0 {
		t.Fatal("New returned without a route")
	}
}

func TestListenOptions(t *testing.T) {
	for _, bad := range []string{"", "localhost", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, err := New(context.Background(), WithListen(bad)); err == nil {
			t.Errorf("WithListen(%q) accepted", bad)
		}
		if _, err := New(context.Background(), WithClusterListen(bad)); err == nil {
			t.Errorf("WithClusterListen(%q) accepted", bad)
		}
	}
}
