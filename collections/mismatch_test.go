package collections

import (
	"context"
	"errors"
	htmltemplate "html/template"
	"log/slog"
	"strings"
	"testing"
	texttemplate "text/template"
	"time"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/logtest"
)

// logged is WithGroupConfig with the test timings and a captured log.
func logged(log *logtest.Log) Option {
	cfg := testGroupConfig()
	cfg.Logger = log.Logger()
	return WithGroupConfig(cfg)
}

// notOnline checks that err is an Online that gave up, explained, and
// returns its explanation.
func notOnline(t *testing.T, err error) *groups.NotOnlineError {
	t.Helper()
	if err == nil {
		t.Fatal("online, want not")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not match context.DeadlineExceeded", err)
	}
	var no *groups.NotOnlineError
	if !errors.As(err, &no) {
		t.Fatalf("error %q (%T) does not say why", err, err)
	}
	t.Log(err)
	return no
}

// Two writers of one name with different types each come online alone;
// both warn, naming the types, and show the other in their status. A
// reader of a third type is told that only other collections of its name
// are there.
func TestMismatchedTypes(t *testing.T) {
	tn := newTestNet(t)
	l1, l2 := logtest.New(), logtest.New()
	w1 := openMapW[string, int](t, tn.node(), "typed", logged(l1))
	w2 := openMapW[string, int64](t, tn.node(), "typed", logged(l2))
	online(t, w1, w2)
	for i, l := range []*logtest.Log{l1, l2} {
		var got []string
		trWait(t, 15*time.Second, "a warning", func() bool {
			got = l.Find(slog.LevelWarn, "with other settings", "[string,int]", "[string,int64]")
			return len(got) > 0
		})
		t.Logf("writer %d: %s", i+1, got[0])
	}
	trWait(t, 15*time.Second, "the status to show the other group", func() bool {
		ms := w1.g.Status().Mismatches
		return len(ms) == 1 && ms[0].ID == w2.g.ID()
	})

	r := openMapR[string, uint8](t, tn.node(), "typed")
	trWait(t, 15*time.Second, "the reader to hear both", func() bool { return len(r.g.Status().Mismatches) == 2 })
	err := r.When().Online(ctxT(t, time.Second))
	no := notOnline(t, err)
	if no.Reason != groups.ReasonMismatch || len(no.Mismatches) != 2 {
		t.Fatalf("reason %v, %d mismatches", no.Reason, len(no.Mismatches))
	}
	for _, want := range []string{`Map[string,uint8] "typed"`, "Map[string,int] (1 writer, no reader)", "Map[string,int64] (1 writer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// A reader with no writer is told so, also when other readers are there.
func TestReaderAloneSaysNoWriter(t *testing.T) {
	tn := newTestNet(t)
	r := openMapR[string, int](t, tn.node(), "lonely")
	err := r.When().Online(ctxT(t, time.Second))
	if no := notOnline(t, err); no.Reason != groups.ReasonNoVoter {
		t.Fatalf("reason %v", no.Reason)
	}
	if !strings.Contains(err.Error(), "no writer") {
		t.Fatalf("error %q does not say there is no writer", err)
	}
	openMapR[string, int](t, tn.node(), "lonely")
	trWait(t, 15*time.Second, "the other reader to be heard", func() bool {
		err = r.When().Online(ctxT(t, 100*time.Millisecond))
		return err != nil && strings.Contains(err.Error(), "1 other reader")
	})
	if no := notOnline(t, err); no.Reason != groups.ReasonNoVoter {
		t.Fatalf("reason %v", no.Reason)
	}
}

// Two handles of one name with different types on one node hear each
// other too.
func TestMismatchedTypesOneNode(t *testing.T) {
	tn := newTestNet(t)
	n := tn.node()
	l1, l2 := logtest.New(), logtest.New()
	w1 := openMapW[string, int](t, n, "typed", logged(l1))
	w2 := openMapW[string, int64](t, n, "typed", logged(l2))
	online(t, w1, w2)
	for _, l := range []*logtest.Log{l1, l2} {
		trWait(t, 15*time.Second, "a warning", func() bool {
			return len(l.Find(slog.LevelWarn, "with other settings", "[string,int]", "[string,int64]")) > 0
		})
	}
}

// A type's identity is its package name and type name, not its import
// path: text/template.Template and html/template.Template name the same.
func TestTypeNameWithoutPath(t *testing.T) {
	if a, b := typeName[texttemplate.Template](), typeName[htmltemplate.Template](); a != b || a != "template.Template" {
		t.Fatalf("%q, %q", a, b)
	}
}
