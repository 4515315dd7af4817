package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/spf13/cobra"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/raftconf"
	"github.com/mosaik-go/mosaik/internal/replica"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/storage"
)

// logFlags are the flags of the log command.
type logFlags struct {
	group   string
	entries bool
	from    uint64
	limit   int
}

// newLogCommand returns the log command, reading data directories on fs.
func newLogCommand(o *options, fs vfs.FS) *cobra.Command {
	f := &logFlags{}
	c := &cobra.Command{
		Use:   "log DIR",
		Short: "Show the Raft state stored in a data directory (offline)",
		Long: `Show what a node's data directory holds, without changing it: the node id,
and for each group its log range, current term, vote and snapshots. With
--entries, list a group's log entries, commands decoded to JSON.

The directory must not be in use: stop the node first, or look at the live
network with the other commands.`,
		Example: `  inspect log /var/lib/app/data
  inspect log /var/lib/app/data --group 1a2b --entries --from 100 --limit 20
  inspect log /var/lib/app/data --group 1a2b --entries --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !f.entries && (cmd.Flags().Changed("from") || cmd.Flags().Changed("limit")) {
				return usageError{errors.New("--from and --limit page through --entries")}
			}
			return runLog(cmd.OutOrStdout(), o, f, fs, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.group, "group", "", "only the group whose id starts with this hex prefix")
	fl.BoolVar(&f.entries, "entries", false, "list the group's log entries")
	fl.Uint64Var(&f.from, "from", 0, "with --entries: first index to list (default: the first stored)")
	fl.IntVar(&f.limit, "limit", 100, "with --entries: most entries to list; 0 lists all")
	return c
}

func runLog(w io.Writer, o *options, f *logFlags, fs vfs.FS, dir string) error {
	if f.limit < 0 {
		return usageError{fmt.Errorf("--limit %d is negative", f.limit)}
	}
	prefix := strings.ToLower(f.group)
	if !isHex(prefix) {
		return usageError{fmt.Errorf("--group %q is not a hex prefix of a group id", f.group)}
	}
	db, err := openDataDir(fs, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	all, err := db.Groups()
	if err != nil {
		return err
	}
	ids, err := selectGroups(all, prefix)
	if err != nil {
		return err
	}
	nodeID := db.NodeID()
	node := hex.EncodeToString(nodeID[:])
	if !f.entries {
		return printLogSummary(w, o.json, node, db, ids)
	}
	switch {
	case len(ids) == 0:
		return fmt.Errorf("%s holds no groups", dir)
	case len(ids) > 1:
		return fmt.Errorf("%s holds %d groups (%s): choose one with --group", dir, len(ids), shortIDs(ids))
	}
	return printLogEntries(w, o.json, node, db.ReadGroup(ids[0]), f.from, f.limit)
}

// openDataDir opens dir read-only, turning the storage errors a user meets
// into advice.
func openDataDir(fs vfs.FS, dir string) (*storage.DB, error) {
	db, err := storage.Open(dir, &storage.Options{FS: fs, ReadOnly: true})
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%s is in use, probably by its node: stop the node to read the directory, or inspect the live network instead (%w)", dir, err)
	}
	return db, err
}

// selectGroups returns the ids of the groups in all that start with
// prefix: all of them for an empty prefix, else exactly one.
func selectGroups(all [][32]byte, prefix string) ([][32]byte, error) {
	if prefix == "" {
		return all, nil
	}
	var match [][32]byte
	for _, id := range all {
		if strings.HasPrefix(hex.EncodeToString(id[:]), strings.ToLower(prefix)) {
			match = append(match, id)
		}
	}
	switch {
	case len(match) == 1:
		return match, nil
	case len(match) > 1:
		return nil, fmt.Errorf("group prefix %q matches %d groups (%s): give more digits", prefix, len(match), shortIDs(match))
	case len(all) == 0:
		return nil, fmt.Errorf("no group matches prefix %q: the directory holds no groups", prefix)
	}
	return nil, fmt.Errorf("no group matches prefix %q; the directory holds %s", prefix, shortIDs(all))
}

func shortIDs(ids [][32]byte) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = groups.ID(id).Short()
	}
	return strings.Join(s, ", ")
}

// logDirJSON is the JSON summary of a data directory.
type logDirJSON struct {
	Node   string         `json:"node"`
	Groups []logGroupJSON `json:"groups"`
}

type logGroupJSON struct {
	ID    string `json:"id"`
	First uint64 `json:"first_index"` // 0: the log is empty
	Last  uint64 `json:"last_index"`
	Term  uint64 `json:"current_term"`
	// The last vote cast: its term and the candidate's address (its peer
	// id); zero and empty before any vote.
	VoteTerm  uint64            `json:"last_vote_term"`
	VoteFor   string            `json:"last_vote_candidate"`
	Snapshots []logSnapshotJSON `json:"snapshots"`
}

type logSnapshotJSON struct {
	ID                 string          `json:"id"`
	Index              uint64          `json:"index"`
	Term               uint64          `json:"term"`
	Size               int64           `json:"size"`
	ConfigurationIndex uint64          `json:"configuration_index"`
	Members            []logMemberJSON `json:"members"`
	Created            time.Time       `json:"created"`
}

type logMemberJSON struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}

// Keys hashicorp/raft keeps in its stable store.
var (
	keyCurrentTerm  = []byte("CurrentTerm")
	keyLastVoteTerm = []byte("LastVoteTerm")
	keyLastVoteCand = []byte("LastVoteCand")
)

func readLogGroup(r *storage.GroupReader) (logGroupJSON, error) {
	id := r.ID()
	g := logGroupJSON{ID: hex.EncodeToString(id[:]), Snapshots: []logSnapshotJSON{}}
	var err error
	if g.First, err = r.FirstIndex(); err != nil {
		return g, err
	}
	if g.Last, err = r.LastIndex(); err != nil {
		return g, err
	}
	for _, s := range []struct {
		key []byte
		to  *uint64
	}{{keyCurrentTerm, &g.Term}, {keyLastVoteTerm, &g.VoteTerm}} {
		if *s.to, err = r.GetUint64(s.key); err != nil && !errors.Is(err, storage.ErrKeyNotFound) {
			return g, err
		}
	}
	cand, err := r.Get(keyLastVoteCand)
	if err != nil && !errors.Is(err, storage.ErrKeyNotFound) {
		return g, err
	}
	g.VoteFor = string(cand)
	snaps, err := r.Snapshots()
	if err != nil {
		return g, err
	}
	for _, s := range snaps {
		g.Snapshots = append(g.Snapshots, logSnapshotJSON{
			ID: s.ID, Index: s.Index, Term: s.Term, Size: s.Size,
			ConfigurationIndex: s.ConfigurationIndex,
			Members:            membersJSON(s.Configuration),
			Created:            s.Created,
		})
	}
	return g, nil
}

func membersJSON(c raft.Configuration) []logMemberJSON {
	out := make([]logMemberJSON, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = logMemberJSON{ID: string(s.ID), Address: string(s.Address), Suffrage: enumName(suffrageNames, s.Suffrage, "suffrage")}
	}
	return out
}

// Names of Raft's enums as inspect prints them.
var (
	suffrageNames = map[raft.ServerSuffrage]string{raft.Voter: "voter", raft.Nonvoter: "nonvoter", raft.Staging: "staging"}
	logTypeNames  = map[raft.LogType]string{
		raft.LogCommand: "command", raft.LogNoop: "noop", raft.LogConfiguration: "configuration",
		raft.LogBarrier: "barrier", raft.LogAddPeerDeprecated: "add-peer", raft.LogRemovePeerDeprecated: "remove-peer",
	}
)

// enumName returns the name of v, or what and its number when it has none.
func enumName[E ~uint8 | ~int](names map[E]string, v E, what string) string {
	if n, ok := names[v]; ok {
		return n
	}
	return fmt.Sprintf("%s(%d)", what, v)
}

func printLogSummary(w io.Writer, asJSON bool, node string, db *storage.DB, ids [][32]byte) error {
	out := logDirJSON{Node: node, Groups: make([]logGroupJSON, 0, len(ids))}
	for _, id := range ids {
		g, err := readLogGroup(db.ReadGroup(id))
		if err != nil {
			return err
		}
		out.Groups = append(out.Groups, g)
	}
	if asJSON {
		return printJSON(w, out)
	}
	fmt.Fprintf(w, "node %s\n\n", node)
	if len(out.Groups) == 0 {
		fmt.Fprintln(w, "no groups")
		return nil
	}
	rows := make([][]string, len(out.Groups))
	for i, g := range out.Groups {
		vote := "-"
		if g.VoteFor != "" {
			vote = fmt.Sprintf("%s in term %d", shortPeer(g.VoteFor), g.VoteTerm)
		}
		rows[i] = []string{g.ID[:8], indexOrDash(g.First), indexOrDash(g.Last), strconv.FormatUint(g.Term, 10), vote, strconv.Itoa(len(g.Snapshots))}
	}
	if err := table(w, []string{"GROUP", "FIRST", "LAST", "TERM", "VOTE", "SNAPSHOTS"}, rows); err != nil {
		return err
	}
	for _, g := range out.Groups {
		if len(g.Snapshots) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nsnapshots of group %s, newest first\n", g.ID[:8])
		rows := make([][]string, len(g.Snapshots))
		for i, s := range g.Snapshots {
			rows[i] = []string{s.ID, strconv.FormatUint(s.Index, 10), strconv.FormatUint(s.Term, 10),
				strconv.FormatInt(s.Size, 10), strconv.FormatUint(s.ConfigurationIndex, 10), membersText(s.Members)}
		}
		if err := table(w, []string{"ID", "INDEX", "TERM", "SIZE", "CONFIG-INDEX", "MEMBERS"}, rows); err != nil {
			return err
		}
	}
	return nil
}

func indexOrDash(i uint64) string {
	if i == 0 {
		return "-"
	}
	return strconv.FormatUint(i, 10)
}

// shortPeer shortens a peer id (64 hex digits) to 8; other addresses stay.
func shortPeer(s string) string {
	if _, err := hex.DecodeString(s); err == nil && len(s) == 64 {
		return s[:8]
	}
	return s
}

func membersText(ms []logMemberJSON) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = shortPeer(m.ID) + " " + m.Suffrage
		if m.Address != m.ID {
			s[i] += " at " + m.Address
		}
	}
	return strings.Join(s, ", ")
}

// logEntryJSON is one log entry, its data decoded as far as possible.
type logEntryJSON struct {
	Index         uint64          `json:"index"`
	Term          uint64          `json:"term"`
	Type          string          `json:"type"`
	AppendedAt    *time.Time      `json:"appended_at,omitempty"`
	Command       *logCommandJSON `json:"command,omitempty"`
	Configuration []logMemberJSON `json:"configuration,omitempty"`
	// Data is the entry's data as hex when it is not decoded: an entry of
	// another type, or one that does not decode (Error says why).
	Data       string `json:"data,omitempty"`
	Error      string `json:"error,omitempty"`
	Extensions string `json:"extensions,omitempty"`
}

// logCommandJSON is an replica.Entry: a batch of commands from one session,
// or (seq 0) the founding of the cluster.
type logCommandJSON struct {
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
	Base    uint64 `json:"base"`
	First   uint64 `json:"first"`
	Cmds    []any  `json:"cmds"`
	Cluster string `json:"cluster,omitempty"`
}

func decodeEntry(l *raft.Log) logEntryJSON {
	e := logEntryJSON{Index: l.Index, Term: l.Term, Type: enumName(logTypeNames, l.Type, "type")}
	if !l.AppendedAt.IsZero() {
		at := l.AppendedAt.UTC()
		e.AppendedAt = &at
	}
	if len(l.Extensions) > 0 {
		e.Extensions = "0x" + hex.EncodeToString(l.Extensions)
	}
	var err error
	switch l.Type {
	case raft.LogCommand:
		e.Command, err = decodeCommand(l.Data)
	case raft.LogConfiguration:
		var c raft.Configuration
		if c, err = raftconf.Decode(l.Data); err == nil {
			e.Configuration = membersJSON(c)
		}
	default:
		if len(l.Data) > 0 {
			e.Data = "0x" + hex.EncodeToString(l.Data)
		}
	}
	if err != nil {
		e.Data, e.Error = "0x"+hex.EncodeToString(l.Data), err.Error()
	}
	return e
}

func decodeCommand(data []byte) (*logCommandJSON, error) {
	var re replica.Entry
	if err := rsm.Unmarshal(data, &re); err != nil {
		return nil, err
	}
	c := &logCommandJSON{
		Session: hex.EncodeToString(re.Session[:]), Seq: re.Seq, Base: re.Base, First: uint64(re.First),
		Cmds: make([]any, len(re.Cmds)),
	}
	if len(re.Cluster) > 0 {
		c.Cluster = hex.EncodeToString(re.Cluster)
	}
	for i, raw := range re.Cmds {
		v, err := decodeCBOR(raw)
		if err != nil {
			v = map[string]any{"error": err.Error(), "data": "0x" + hex.EncodeToString(raw)}
		}
		c.Cmds[i] = v
	}
	return c, nil
}

// entryText is the table's one-line description of an entry.
func entryText(e *logEntryJSON) string {
	var s string
	switch c := e.Command; {
	case e.Error != "":
		s = "undecodable: " + e.Error
	case c != nil && c.Seq == 0:
		s = "founding of cluster " + c.Cluster
	case c != nil:
		cmds := make([]string, len(c.Cmds))
		for i, v := range c.Cmds {
			b, err := json.Marshal(v)
			if err != nil {
				b = []byte(err.Error())
			}
			cmds[i] = string(b)
		}
		s = fmt.Sprintf("session %s seq %d base %d first %d: %s", c.Session[:8], c.Seq, c.Base, c.First, strings.Join(cmds, " "))
	case e.Type == "configuration":
		s = membersText(e.Configuration)
	default:
		s = e.Data
	}
	const max = 120
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

// logEntryRows is how many rows printLogEntries puts in one table: a longer
// listing is several tables, so that it need not be held in memory.
const logEntryRows = 500

// logEntriesJSON is the head of the --entries --json document; the entries
// follow it, streamed.
type logEntriesJSON struct {
	Node  string `json:"node"`
	Group string `json:"group"`
	First uint64 `json:"first_index"`
	Last  uint64 `json:"last_index"`
}

func printLogEntries(w io.Writer, asJSON bool, node string, r *storage.GroupReader, from uint64, limit int) error {
	id := r.ID()
	head := logEntriesJSON{Node: node, Group: hex.EncodeToString(id[:])}
	var err error
	if head.First, err = r.FirstIndex(); err != nil {
		return err
	}
	if head.Last, err = r.LastIndex(); err != nil {
		return err
	}
	var out entrySink
	if asJSON {
		out = newJSONEntries(w, head)
	} else {
		out = newTableEntries(w, head)
	}
	var next uint64
	n := 0
	for l, err := range r.Entries(from) {
		if err != nil {
			return errors.Join(out.flush(), err)
		}
		if limit > 0 && n == limit {
			next = l.Index
			break
		}
		e := decodeEntry(l)
		if err := out.add(&e); err != nil {
			return err
		}
		n++
	}
	return out.end(next)
}

// entrySink prints entries as they are read.
type entrySink interface {
	add(e *logEntryJSON) error
	// flush prints what is buffered, before an error ends the listing.
	flush() error
	// end finishes the listing; next, if not 0, is where more entries start.
	end(next uint64) error
}

type tableEntries struct {
	w    io.Writer
	rows [][]string
	n    int
}

func newTableEntries(w io.Writer, h logEntriesJSON) *tableEntries {
	if h.Last == 0 {
		fmt.Fprintf(w, "group %s: the log is empty\n", h.Group[:8])
	} else {
		fmt.Fprintf(w, "group %s: log %d-%d\n", h.Group[:8], h.First, h.Last)
	}
	return &tableEntries{w: w}
}

func (t *tableEntries) add(e *logEntryJSON) error {
	at := "-"
	if e.AppendedAt != nil {
		at = e.AppendedAt.Format("2006-01-02T15:04:05.000Z07:00")
	}
	t.n++
	t.rows = append(t.rows, []string{strconv.FormatUint(e.Index, 10), strconv.FormatUint(e.Term, 10), e.Type, at, entryText(e)})
	if len(t.rows) == logEntryRows {
		return t.flush()
	}
	return nil
}

func (t *tableEntries) flush() error {
	if len(t.rows) == 0 {
		return nil
	}
	err := table(t.w, []string{"INDEX", "TERM", "TYPE", "APPENDED", "ENTRY"}, t.rows)
	t.rows = t.rows[:0]
	return err
}

func (t *tableEntries) end(next uint64) error {
	if err := t.flush(); err != nil {
		return err
	}
	if t.n == 0 {
		_, err := fmt.Fprintln(t.w, "no entries to list")
		return err
	}
	if next != 0 {
		_, err := fmt.Fprintf(t.w, "more entries follow: --from %d\n", next)
		return err
	}
	return nil
}

// jsonEntries writes the document printJSON would write for a head object
// with "entries" (and "next") added, one entry at a time.
type jsonEntries struct {
	w   io.Writer
	n   int
	err error
}

func newJSONEntries(w io.Writer, h any) *jsonEntries {
	j := &jsonEntries{w: w}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		j.err = err
		return j
	}
	j.write(strings.TrimSuffix(string(b), "\n}") + ",\n  \"entries\": [")
	return j
}

func (j *jsonEntries) write(s string) {
	if j.err == nil {
		_, j.err = io.WriteString(j.w, s)
	}
}

func (j *jsonEntries) add(e *logEntryJSON) error { return j.item(e) }

// item writes one entry.
func (j *jsonEntries) item(e any) error {
	b, err := json.MarshalIndent(e, "    ", "  ")
	if err != nil {
		return err
	}
	if j.n > 0 {
		j.write(",")
	}
	j.n++
	j.write("\n    " + string(b))
	return j.err
}

func (j *jsonEntries) flush() error { return j.err }

func (j *jsonEntries) end(next uint64) error {
	if j.n > 0 {
		j.write("\n  ")
	}
	j.write("]")
	if next != 0 {
		j.write(",\n  \"next\": " + strconv.FormatUint(next, 10))
	}
	j.write("\n}\n")
	return j.err
}
