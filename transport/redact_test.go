package transport

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:secret@host:4222", "nats://host:4222"},
		{"nats://u:p@h:1,nats://tok@h2:2", "nats://h:1,nats://h2:2"},
		{"nats://u:p@h:1, nats://h2:2 ,", "nats://h:1,nats://h2:2"},
		{"tls://alice:secret@127.0.0.1:4443", "tls://127.0.0.1:4443"},
		{"tls://127.0.0.1:4443", "tls://127.0.0.1:4443"},
		{"ws://u:p@[::1]:8080/path?token=secret#frag", "ws://[::1]:8080"},
		{"nats://h:1/?auth_token=secret", "nats://h:1"},
		{"nats://u:p%40ss@h:1", "nats://h:1"},
		{"alice:secret@host:4222", ""}, // no scheme: not echoed
		{"host:4222", ""},
		{"nats:secret@host", ""},
		{"garbage", ""},
		{"nats://u:sec ret@h:1", ""},
		{"nats://u:secret@h:port", ""},
		{"://secret", ""},
		{"%zz:secret@h", ""},
		{"garbage,nats://u:p@h:1", "nats://h:1"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(redactURL(tc.in), "secret") {
			t.Errorf("redactURL(%q) leaks the secret", tc.in)
		}
	}
}

// A node joined with credentials in its URL answers status requests with
// the URL and without the credentials.
func TestStatusRedactsCredentials(t *testing.T) {
	const user, pass = "alice", "s3cr3t-pa55word"
	a := newNet(t,
		WithServerOptions(func(o *server.Options) { o.Username, o.Password = user, pass }),
		WithNATSOptions(nats.UserInfo(user, pass)))
	host := strings.TrimPrefix(a.URL(), "nats://")
	b := join(t, a, WithURL("nats://"+user+":"+pass+"@"+host))
	if !strings.Contains(b.URL(), pass) {
		t.Fatalf("URL() = %q: the test expects it to keep the credentials", b.URL())
	}

	sts, err := a.Survey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 1 || sts[0].Peer != b.ID() {
		t.Fatalf("survey answered by %v, want only %s", sts, b.ID())
	}
	if want := "nats://" + host; sts[0].URL != want {
		t.Fatalf("surveyed URL %q, want %q", sts[0].URL, want)
	}
	raw, err := a.requestPlain(t.Context(), a.Subject("status"), b.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var st NodeStatus
	if err := decMode.Unmarshal(raw, &st); err != nil || st.Peer != b.ID() {
		t.Fatalf("status answer from %s: %v", st.Peer, err)
	}
	for _, secret := range []string{pass, user + ":"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("status answer carries %q: %q", secret, raw)
		}
	}
	if strings.Contains(b.Status().URL, pass) {
		t.Fatalf("Status().URL = %q", b.Status().URL)
	}
}
