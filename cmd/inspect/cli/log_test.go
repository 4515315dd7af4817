package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
	"github.com/mosaik-go/mosaik/transport"
)

// tally is the machine of the test group: it adds amounts under keys. It
// refuses to snapshot until allowed, so that the one snapshot the test
// takes covers a log position the test chose.
type tally struct {
	mu     sync.Mutex
	sums   map[string]int64
	snapOK atomic.Bool
}

type tallyCmd struct {
	Key string
	Add int64
}

func (m *tally) Signature() string { return "inspect.test.tally.v1" }

func (m *tally) Apply(c tallyCmd, _ rsm.ApplyContext) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sums == nil {
		m.sums = map[string]int64{}
	}
	m.sums[c.Key] += c.Add
}

func (m *tally) Query(key string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sums[key]
}

var errTallyNotYet = errors.New("tally: no snapshot yet")

func (m *tally) Snapshot() (rsm.Snapshot, error) {
	if !m.snapOK.Load() {
		return nil, errTallyNotYet
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := rsm.Marshal(m.sums)
	if err != nil {
		return nil, err
	}
	return tallySnap(b), nil
}

func (m *tally) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var sums map[string]int64
	if err := rsm.Unmarshal(b, &sums); err != nil {
		return err
	}
	m.mu.Lock()
	m.sums = sums
	m.mu.Unlock()
	return nil
}

type tallySnap []byte

func (s tallySnap) Persist(w io.Writer) error { _, err := w.Write(s); return err }
func (tallySnap) Release()                    {}

// logFixture is a data directory written by real groups on one node: group
// runs tally, executes logFixtureCmds and logFixtureBatch and takes one snapshot;
// idle runs rsm.NoOp and executes nothing. Their ids are fixed (fixed keys,
// machines and timings); the node, session and cluster ids are random.
type logFixture struct {
	dir      string
	node     transport.PeerID
	group    groups.ID
	idle     groups.ID
	last     uint64   // group's last log index
	session  string   // hex of the session group's commands were issued in
	clusters []string // hex of the cluster ids of group and idle
}

// The commands the fixture's group executes, in order: one entry each,
// then one entry holding the batch.
var (
	logFixtureCmds  = []tallyCmd{{"apples", 3}, {"pears", 5}, {"apples", -1}}
	logFixtureBatch = []tallyCmd{{"plums", 7}, {"pears", 2}}
)

func logFixtureConfig(db *storage.DB) *groups.Config {
	return &groups.Config{
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   200 * time.Millisecond,
		BootstrapDelay:    50 * time.Millisecond,
		Storage:           db,
		SnapshotThreshold: 1,
		SnapshotInterval:  10 * time.Millisecond,
	}
}

// newLogFixture builds the fixture in a new directory and stops everything
// it started.
func newLogFixture(t *testing.T) *logFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	db, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fx := &logFixture{dir: dir, node: transport.PeerID(db.NodeID())}
	ident, err := transport.IdentityFromSeed(db.NodeKey())
	if err != nil {
		t.Fatal(err)
	}
	net, err := transport.New(ctx, transport.WithIdentity(ident))
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	m := &tally{}
	g, err := groups.Join(net, groups.KeyFromSecret("inspect log test"), m, logFixtureConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	idle, err := groups.Join(net, groups.KeyFromSecret("inspect log test: idle"), rsm.NoOp{}, logFixtureConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fx.group, fx.idle = g.ID(), idle.ID()
	// Each group's first leader writes a founding entry once it is online;
	// wait for it, so that it comes before the commands.
	for _, id := range []groups.ID{fx.group, fx.idle} {
		r := db.ReadGroup(id)
		pollUntil(t, ctx, "the founding entry of "+id.Short(), func() bool {
			for l, err := range r.Entries(0) {
				if err != nil {
					t.Fatal(err)
				}
				if l.Type == raft.LogCommand {
					return true
				}
			}
			return false
		})
	}
	if err := g.When().Online(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range logFixtureCmds {
		if _, err := g.Execute(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.ExecuteMany(ctx, logFixtureBatch); err != nil {
		t.Fatal(err)
	}
	r := db.ReadGroup(fx.group)
	if fx.last, err = r.LastIndex(); err != nil {
		t.Fatal(err)
	}
	// Every entry is applied (Execute returned) and none follows, so the
	// snapshot Raft takes now covers the whole log.
	m.snapOK.Store(true)
	pollUntil(t, ctx, "a snapshot", func() bool {
		snaps, err := r.Snapshots()
		if err != nil {
			t.Fatal(err)
		}
		return len(snaps) == 1
	})
	for _, c := range []interface{ Close() error }{idle, g, net, db} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fx.readIDs(t)
	return fx
}

// readIDs finds the session and cluster ids in the fixture's logs.
func (fx *logFixture) readIDs(t *testing.T) {
	t.Helper()
	db, err := storage.Open(fx.dir, &storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []groups.ID{fx.group, fx.idle} {
		for l, err := range db.ReadGroup(id).Entries(0) {
			if err != nil {
				t.Fatal(err)
			}
			if l.Type != raft.LogCommand {
				continue
			}
			var e replica.Entry
			if err := rsm.Unmarshal(l.Data, &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq == 0 {
				fx.clusters = append(fx.clusters, hex.EncodeToString(e.Cluster))
			} else {
				fx.session = hex.EncodeToString(e.Session[:])
			}
		}
	}
	if len(fx.clusters) != 2 || fx.session == "" {
		t.Fatalf("fixture: clusters %q, session %q", fx.clusters, fx.session)
	}
}

// normalize replaces what differs between runs with fixed text of the
// same length where it may sit in a table column.
func (fx *logFixture) normalize(s string) string {
	node := fx.node.String()
	pairs := []string{node, "<node>", fx.session, "<session>", node[:8], "<node:8>", fx.session[:8], "<sess:8>"}
	for i, c := range fx.clusters {
		pairs = append(pairs, c, "<cluster-"+string(rune('a'+i))+">")
	}
	s = strings.NewReplacer(pairs...).Replace(s)
	return logTimestamp.ReplaceAllString(s, "YYYY-MM-DDThh:mm:ss.mmmZ")
}

var logTimestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)

// pollUntil polls cond until it holds, failing the test when ctx ends.
func pollUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// runInspect runs inspect with args and returns its exit code and output.
func runInspect(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// runInspectOK runs inspect and fails the test unless it succeeds.
func runInspectOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runInspect(t, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("inspect %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// runInspectFails runs inspect, expects exit code want and a message on stderr
// holding every one of the parts, and returns stdout.
func runInspectFails(t *testing.T, want int, args []string, parts ...string) string {
	t.Helper()
	code, out, errOut := runInspect(t, args...)
	if code != want {
		t.Errorf("inspect %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, want, errOut)
	}
	if !strings.HasPrefix(errOut, "inspect: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("inspect %s: stderr %q, want one line starting with \"inspect: \"", strings.Join(args, " "), errOut)
	}
	for _, p := range parts {
		if !strings.Contains(errOut, p) {
			t.Errorf("inspect %s: stderr %q does not say %q", strings.Join(args, " "), errOut, p)
		}
	}
	return out
}

// dirDigest digests the names and contents of every file under dir.
func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestLog(t *testing.T) {
	fx := newLogFixture(t)
	before := dirDigest(t, fx.dir)
	group := fx.group.String()

	t.Run("summary", func(t *testing.T) {
		golden(t, "log_summary.golden", fx.normalize(runInspectOK(t, "log", fx.dir)))
	})
	t.Run("entries", func(t *testing.T) {
		out := runInspectOK(t, "log", fx.dir, "--group", group[:6], "--entries")
		golden(t, "log_entries.golden", fx.normalize(out))
	})
	t.Run("page", func(t *testing.T) {
		out := runInspectOK(t, "log", fx.dir, "--group", strings.ToUpper(group[:6]), "--entries", "--from", "5", "--limit", "2")
		golden(t, "log_entries_page.golden", fx.normalize(out))
	})
	t.Run("group", func(t *testing.T) {
		out := runInspectOK(t, "log", fx.dir, "--group", fx.idle.String()[:3])
		if !strings.Contains(out, fx.idle.Short()) || strings.Contains(out, fx.group.Short()) {
			t.Errorf("--group %s shows other groups:\n%s", fx.idle.String()[:3], out)
		}
	})
	t.Run("summary json", func(t *testing.T) { checkLogSummaryJSON(t, fx, runInspectOK(t, "log", fx.dir, "--json")) })
	t.Run("entries json", func(t *testing.T) {
		checkLogEntriesJSON(t, fx, runInspectOK(t, "log", fx.dir, "--group", group, "--entries", "--json"))
	})
	t.Run("page json", func(t *testing.T) {
		out := runInspectOK(t, "log", fx.dir, "--group", group, "--entries", "--json", "--from", "6", "--limit", "2")
		var doc logEntriesDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(doc.Entries) != 2 || doc.Entries[0].Index != 6 || doc.Entries[1].Index != 7 || doc.Next != 8 {
			t.Errorf("--from 6 --limit 2: entries %+v, next %d; want 6, 7 and next 8\n%s", doc.Entries, doc.Next, out)
		}
		out = runInspectOK(t, "log", fx.dir, "--group", group, "--entries", "--json", "--from", "100")
		doc = logEntriesDoc{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Entries) != 0 || doc.Next != 0 {
			t.Errorf("--from past the end: %v\n%s", err, out)
		}
	})
	t.Run("errors", func(t *testing.T) {
		// A digit neither group id starts with.
		var other string
		for _, d := range "0123456789abcdef" {
			if !strings.ContainsRune(group[:1]+fx.idle.String()[:1], d) {
				other = string(d)
				break
			}
		}
		runInspectFails(t, 1, []string{"log", fx.dir, "--group", other}, `no group matches prefix "`+other+`"`, fx.group.Short(), fx.idle.Short())
		runInspectFails(t, 2, []string{"log", fx.dir, "--group", "xyz"}, `"xyz" is not a hex prefix`)
		runInspectFails(t, 1, []string{"log", fx.dir, "--entries"}, "holds 2 groups", "choose one with --group")
		missing := filepath.Join(t.TempDir(), "missing")
		runInspectFails(t, 1, []string{"log", missing}, "no data directory at "+missing)
		if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("inspect log created %s: %v", missing, err)
		}
		notes := t.TempDir()
		if err := os.WriteFile(filepath.Join(notes, "notes.txt"), []byte("not a database"), 0o644); err != nil {
			t.Fatal(err)
		}
		runInspectFails(t, 1, []string{"log", notes}, "not a mosaik data directory", "notes.txt")
		runInspectFails(t, 1, []string{"log", filepath.Join(notes, "notes.txt")}, "not a mosaik data directory", "is a file")
		empty := t.TempDir()
		runInspectFails(t, 1, []string{"log", empty}, "not a mosaik data directory", "holds no database")
		if names, _ := os.ReadDir(empty); len(names) != 0 {
			t.Errorf("inspect log wrote into an empty directory: %v", names)
		}
		runInspectFails(t, 2, []string{"log"}, "accepts 1 arg")
		runInspectFails(t, 2, []string{"log", fx.dir, "--entries", "--limit", "-1"}, "--limit -1 is negative")
		runInspectFails(t, 2, []string{"log", fx.dir, "--from", "3"}, "--entries")
	})
	t.Run("locked", func(t *testing.T) {
		db, err := storage.Open(fx.dir, &storage.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		runInspectFails(t, 1, []string{"log", fx.dir}, fx.dir+" is in use", "stop the node", "data directory is in use")
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := corruptCopy(t, fx, 6)
		out := runInspectOK(t, "log", dir) // the summary reads no entry
		if !strings.Contains(out, fx.group.Short()) {
			t.Errorf("summary of the corrupt copy:\n%s", out)
		}
		out = runInspectFails(t, 1, []string{"log", dir, "--group", group, "--entries"}, "storage: corrupt data", "group "+fx.group.Short(), "log entry 6", "checksum mismatch")
		if !strings.Contains(out, "\n5  ") || strings.Contains(out, "\n6  ") {
			t.Errorf("the listing before the corrupt entry should show entries 1-5:\n%s", out)
		}
	})
	if after := dirDigest(t, fx.dir); after != before {
		t.Errorf("inspect log changed the data directory")
	}
}

func TestLogSelectGroups(t *testing.T) {
	ids := [][32]byte{{0xab, 0xc1}, {0xab, 0xc2}, {0x12}}
	if got, err := selectGroups(ids, ""); err != nil || len(got) != 3 {
		t.Errorf("no prefix: %x, %v", got, err)
	}
	for _, prefix := range []string{"abc2", "ABC2"} { // hex digits in either case, as for the network commands
		if got, err := selectGroups(ids, prefix); err != nil || len(got) != 1 || got[0] != ids[1] {
			t.Errorf("%s: %x, %v", prefix, got, err)
		}
	}
	if _, err := selectGroups(ids, "abc"); err == nil || !strings.Contains(err.Error(), `"abc" matches 2 groups (abc10000, abc20000)`) {
		t.Errorf("abc: %v, want two matches", err)
	}
	if _, err := selectGroups(ids, "9"); err == nil || !strings.Contains(err.Error(), "holds abc10000, abc20000, 12000000") {
		t.Errorf("9: %v, want the groups listed", err)
	}
	if _, err := selectGroups(nil, "9"); err == nil || !strings.Contains(err.Error(), "holds no groups") {
		t.Errorf("9 of none: %v", err)
	}
}

// Entries that do not decode are shown, not fatal.
func TestLogDecodeEntry(t *testing.T) {
	long, err := rsm.Marshal(replica.Entry{Seq: 1, Cmds: [][]byte{{0xff}, mustCBOR(t, strings.Repeat("x", 200))}})
	if err != nil {
		t.Fatal(err)
	}
	e := decodeEntry(&raft.Log{Index: 3, Term: 1, Type: raft.LogCommand, Data: long, Extensions: []byte{1, 2}})
	if e.Error != "" || e.Command == nil || e.Extensions != "0x0102" {
		t.Fatalf("entry %+v", e)
	}
	if bad, ok := e.Command.Cmds[0].(map[string]any); !ok || bad["data"] != "0xff" || bad["error"] == "" {
		t.Errorf("undecodable command: %v", e.Command.Cmds[0])
	}
	if txt := entryText(&e); len([]rune(txt)) != 120 || !strings.HasSuffix(txt, "…") {
		t.Errorf("long entry text %q, want 120 characters ending in …", txt)
	}
	for _, l := range []raft.Log{
		{Type: raft.LogCommand, Data: []byte{0x01, 0x02}},
		{Type: raft.LogConfiguration, Data: []byte{0xc1}},
	} {
		e := decodeEntry(&l)
		if e.Error == "" || e.Data != "0x"+hex.EncodeToString(l.Data) || !strings.HasPrefix(entryText(&e), "undecodable: ") {
			t.Errorf("%v entry with bad data: %+v", l.Type, e)
		}
	}
	if e := decodeEntry(&raft.Log{Type: 42, Data: []byte{7}}); e.Type != "type(42)" || e.Data != "0x07" || e.Error != "" {
		t.Errorf("entry of an unknown type: %+v", e)
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := rsm.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// corruptCopy copies the fixture's directory and overwrites log entry index
// of its group with bytes that fail the checksum. It writes with Pebble
// directly, under the key storage documents in keys.go:
// 0x02 group(32) 0x01 index(8).
func corruptCopy(t *testing.T, fx *logFixture, index uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(fx.dir)); err != nil {
		t.Fatal(err)
	}
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	key := append(append([]byte{0x02}, fx.group[:]...), 0x01)
	key = binary.BigEndian.AppendUint64(key, index)
	val, closer, err := pdb.Get(key)
	if err != nil {
		t.Fatalf("entry %d: %v", index, err)
	}
	bad := bytes.Clone(val)
	closer.Close()
	bad[len(bad)-5] ^= 0xff
	if err := pdb.Set(key, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// quietPebble keeps Pebble's messages out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// logSummaryDoc and logEntriesDoc are what the tests expect --json to print.
type logSummaryDoc struct {
	Node   string
	Groups []struct {
		ID                string
		FirstIndex        uint64 `json:"first_index"`
		LastIndex         uint64 `json:"last_index"`
		CurrentTerm       uint64 `json:"current_term"`
		LastVoteTerm      uint64 `json:"last_vote_term"`
		LastVoteCandidate string `json:"last_vote_candidate"`
		Snapshots         []struct {
			ID, Created        string
			Index, Term        uint64
			Size               int64
			ConfigurationIndex uint64 `json:"configuration_index"`
			Members            []map[string]string
		}
	}
}

type logEntriesDoc struct {
	Node, Group string
	FirstIndex  uint64 `json:"first_index"`
	LastIndex   uint64 `json:"last_index"`
	Next        uint64
	Entries     []struct {
		Index, Term   uint64
		Type          string
		AppendedAt    *time.Time `json:"appended_at"`
		Configuration []map[string]string
		Command       *struct {
			Session          string
			Seq, Base, First uint64
			Cmds             []map[string]any
			Cluster          string
		}
		Data, Error string
	}
}

func checkLogSummaryJSON(t *testing.T, fx *logFixture, out string) {
	var doc logSummaryDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	node := fx.node.String()
	if doc.Node != node || len(doc.Groups) != 2 {
		t.Fatalf("node %s with %d groups, want %s with 2\n%s", doc.Node, len(doc.Groups), node, out)
	}
	ids := []string{doc.Groups[0].ID, doc.Groups[1].ID}
	want := []string{fx.group.String(), fx.idle.String()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("groups %q, want %q in order", ids, want)
	}
	self := map[string]string{"id": node, "address": node, "suffrage": "voter"}
	for _, g := range doc.Groups {
		if g.FirstIndex != 1 || g.CurrentTerm < 2 || g.LastVoteTerm != g.CurrentTerm || g.LastVoteCandidate != node {
			t.Errorf("group %s: first %d, term %d, vote %s in %d; want first 1 and a vote for %s in the current term",
				g.ID, g.FirstIndex, g.CurrentTerm, g.LastVoteCandidate, g.LastVoteTerm, node)
		}
		if g.ID == fx.idle.String() {
			if g.LastIndex != 4 || len(g.Snapshots) != 0 {
				t.Errorf("idle group: last %d with %d snapshots, want 4 (configuration, noop, barrier, founding) and none", g.LastIndex, len(g.Snapshots))
			}
			continue
		}
		if g.LastIndex != fx.last || len(g.Snapshots) != 1 {
			t.Fatalf("group: last %d with %d snapshots, want %d and 1", g.LastIndex, len(g.Snapshots), fx.last)
		}
		s := g.Snapshots[0]
		created, err := time.Parse(time.RFC3339Nano, s.Created)
		if s.Index != fx.last || s.Term != g.CurrentTerm || s.Size <= 0 || s.ConfigurationIndex != 1 ||
			len(s.Members) != 1 || !maps.Equal(s.Members[0], self) || err != nil || time.Since(created) > time.Hour {
			t.Errorf("snapshot %+v: want index %d, term %d, configuration 1 of %s as voter, created now", s, fx.last, g.CurrentTerm, node)
		}
	}
}

func checkLogEntriesJSON(t *testing.T, fx *logFixture, out string) {
	var doc logEntriesDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Node != fx.node.String() || doc.Group != fx.group.String() || doc.FirstIndex != 1 || doc.LastIndex != fx.last || doc.Next != 0 {
		t.Errorf("head: node %s, group %s, log %d-%d, next %d", doc.Node, doc.Group, doc.FirstIndex, doc.LastIndex, doc.Next)
	}
	if uint64(len(doc.Entries)) != fx.last {
		t.Fatalf("%d entries, want %d", len(doc.Entries), fx.last)
	}
	var types []string
	for i, e := range doc.Entries {
		types = append(types, e.Type)
		if e.Index != uint64(i+1) || e.Error != "" || (e.AppendedAt == nil) != (i == 0) {
			t.Errorf("entry %d: index %d, error %q, appended at %v", i+1, e.Index, e.Error, e.AppendedAt)
		}
	}
	want := []string{"configuration", "noop", "barrier", "command", "command", "command", "command", "command"}
	if !slices.Equal(types, want) {
		t.Fatalf("types %q, want %q", types, want)
	}
	node := fx.node.String()
	if c := doc.Entries[0].Configuration; len(c) != 1 || !maps.Equal(c[0], map[string]string{"id": node, "address": node, "suffrage": "voter"}) {
		t.Errorf("configuration %v, want %s alone as voter", c, node)
	}
	if c := doc.Entries[3].Command; c == nil || c.Seq != 0 || c.Cluster != fx.clusters[0] || len(c.Cmds) != 0 {
		t.Errorf("founding entry %+v, want cluster %s", c, fx.clusters[0])
	}
	batches := [][]tallyCmd{{logFixtureCmds[0]}, {logFixtureCmds[1]}, {logFixtureCmds[2]}, logFixtureBatch}
	first := uint64(1)
	for i, batch := range batches {
		c := doc.Entries[4+i].Command
		if c == nil || c.Session != fx.session || c.Seq != uint64(i+1) || c.Base != uint64(i) || c.First != first || len(c.Cmds) != len(batch) {
			t.Fatalf("entry %d: command %+v, want batch %d of session %s, first %d, %d commands", 5+i, c, i+1, fx.session, first, len(batch))
		}
		for j, cmd := range batch {
			want := map[string]any{"Key": cmd.Key, "Add": float64(cmd.Add)}
			if !maps.Equal(c.Cmds[j], want) {
				t.Errorf("entry %d command %d: %v, want %v", 5+i, j, c.Cmds[j], want)
			}
		}
		first += uint64(len(batch))
	}
}
