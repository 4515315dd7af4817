package collections

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/transport"
)

// TestInspectOperatorReplay: a NATS client without the secret captures a
// sealed operator command on its way to a member. Once the member's handle
// is opened again (a restart of the process, or of the collection), its
// inspect subscription starts with an empty replay window; the captured
// frame, sent again with the client's own reply inbox, must not run the
// command again (a replayed forced RemoveMember would remove a live member).
func TestInspectOperatorReplay(t *testing.T) {
	f := newInspectFixture(t)
	nc, err := nats.Connect(f.tn.hub.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	captured := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(f.subject(), captured)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The test's clocks agree: a command issued before the handle started
	// is a replay.
	old := operatorSkew
	operatorSkew = 0
	t.Cleanup(func() { operatorSkew = old })

	op := f.peer(t)
	stranger := transport.PeerID{1}
	r := f.ask(t, op, inspectwire.Request{Op: inspectwire.OpRemoveMember, Peer: stranger.String(), Force: true, Issued: time.Now().UnixNano()})
	if r.Code != inspectwire.Refused {
		t.Fatalf("remove-member of a stranger: code %d %q, want refused", r.Code, r.Msg)
	}
	var frame *nats.Msg
	select {
	case frame = <-captured:
	case <-time.After(10 * time.Second):
		t.Fatal("operator command not captured")
	}
	_ = sub.Unsubscribe()

	// The member's handle opens again, as after a restart.
	if err := f.w.Close(); err != nil {
		t.Fatal(err)
	}
	f.w = cleanup(t, must[*MapWriter[string, string]](t)(NewMapWriter[string, string](f.node, "inspected", append(testOpts(), WithSecret(f.secret))...)))
	if err := f.w.When().Online(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The handle serves (and so has subscribed): a fresh command is answered.
	if r := f.ask(t, op, inspectwire.Request{Op: inspectwire.OpHead}); r.Code != inspectwire.OK {
		t.Fatalf("head: code %d %q", r.Code, r.Msg)
	}

	if _, err := nc.Request(frame.Subject, frame.Data, 5*time.Second); err == nil {
		t.Errorf("a captured operator command, replayed to the reopened handle, was run again (it answered)")
	}
	// A command issued now runs; one without its time is refused.
	if r := f.ask(t, op, inspectwire.Request{Op: inspectwire.OpRemoveMember, Peer: stranger.String(), Issued: time.Now().UnixNano()}); r.Code != inspectwire.Refused || !strings.Contains(r.Msg, "member") {
		t.Errorf("a fresh remove-member: code %d %q, want refused as no member", r.Code, r.Msg)
	}
	if r := f.ask(t, op, inspectwire.Request{Op: inspectwire.OpRemoveMember, Peer: stranger.String()}); r.Code != inspectwire.Refused || !strings.Contains(r.Msg, "issued") {
		t.Errorf("a remove-member without its time: code %d %q, want refused", r.Code, r.Msg)
	}
}
