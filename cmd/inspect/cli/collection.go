package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/transport"
)

// source is a node holding a collection, to read it from.
type source struct {
	net   *transport.Network
	scope *transport.Scope // the collection's: its members answer only in it
	g     *group
	peer  transport.PeerID
	o     *options
}

// collectionSource resolves ref to a collection and picks the member that
// has applied the most to read from.
func collectionSource(net *transport.Network, nodes []node, ref string, o *options) (*source, error) {
	g, err := findGroup(collectGroups(nodes), ref)
	if err != nil {
		return nil, err
	}
	if g.kind() == "" {
		return nil, fmt.Errorf("group %s is not a collection: only collections can be dumped or watched", g.ID.Short())
	}
	var best transport.PeerID
	var applied uint64
	for p, v := range g.Views {
		if best.IsZero() || uint64(v.LogApplied) > applied || (uint64(v.LogApplied) == applied && p.Compare(best) < 0) {
			best, applied = p, uint64(v.LogApplied)
		}
	}
	secret, err := o.secret()
	if err != nil {
		return nil, err
	}
	sealed := false
	for _, v := range g.Views {
		sealed = sealed || v.Sealed
	}
	if sealed && secret.IsZero() {
		return nil, fmt.Errorf("cannot read %s: %w", g.name(), errNeedSecret)
	}
	return &source{net: net, scope: net.Scope(g.ID, secret), g: g, peer: best, o: o}, nil
}

// withCollection runs f with a source for the collection ref names.
func withCollection(cmd *cobra.Command, o *options, ref string, f func(*source) error) error {
	return withNetwork(cmd, o, func(net *transport.Network, nodes []node) error {
		src, err := collectionSource(net, nodes, ref, o)
		if err != nil {
			return err
		}
		return f(src)
	})
}

func (s *source) ask(ctx context.Context, req inspectwire.Request, wait time.Duration) (inspectwire.Reply, error) {
	b, err := inspectwire.Marshal(req)
	if err != nil {
		return inspectwire.Reply{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.o.timeout+wait)
	defer cancel()
	raw, err := s.scope.Request(rctx, inspectwire.Subject(s.net, s.g.ID.String(), s.peer), s.peer, b)
	if err != nil {
		if s.scope.Sealed() {
			return inspectwire.Reply{}, fmt.Errorf("node %s did not answer for %s (a sealed collection answers only requests sealed with its own secret: check the secret given): %w", s.peer.Short(), s.g.name(), err)
		}
		return inspectwire.Reply{}, fmt.Errorf("node %s did not answer for %s: %w", s.peer.Short(), s.g.name(), err)
	}
	r, err := inspectwire.DecodeReply(raw)
	if err != nil {
		return r, fmt.Errorf("node %s sent an answer this inspect cannot read: %w", s.peer.Short(), err)
	}
	switch r.Code {
	case inspectwire.OK:
		return r, nil
	case inspectwire.Compacted:
		return r, fmt.Errorf("%w: the changes after version %d are no longer kept; dump the collection and watch from its version", collections.ErrCompacted, req.Since)
	case inspectwire.Busy:
		return r, fmt.Errorf("%w: %s", collections.ErrBusy, r.Msg)
	default:
		return r, fmt.Errorf("node %s: %s", s.peer.Short(), r.Msg)
	}
}

// change is one decoded change of a collection, ready for JSON.
type change struct {
	Op       string `json:"op,omitempty"`
	Key      any    `json:"key,omitempty"`
	Index    *int   `json:"index,omitempty"`
	Priority any    `json:"priority,omitempty"` // a priority queue's
	Value    any    `json:"value,omitempty"`
}

// decodeChange decodes a change's key and value without their Go types.
func decodeChange(kind string, w inspectwire.Change) (change, error) {
	c := change{Op: w.Op.String()}
	var err error
	keyed := kind == inspectwire.KindMap || kind == inspectwire.KindPQueue
	if keyed && w.Op != inspectwire.ChangeClear && len(w.Key) > 0 {
		if c.Key, err = decodeCBOR(w.Key); err != nil {
			return c, err
		}
	}
	if kind == inspectwire.KindVec {
		c.Index = &w.Index
	}
	// Inserts and sets carry a value; a set's element is its identity, so
	// its removes carry it too.
	hasValue := w.Op == inspectwire.ChangeInsert || w.Op == inspectwire.ChangeSet ||
		kind == inspectwire.KindSet && w.Op == inspectwire.ChangeRemove
	if hasValue && len(w.Value) > 0 {
		if c.Value, err = decodeCBOR(w.Value); err != nil {
			return c, err
		}
	}
	// A priority queue's value is [priority, value].
	if kind == inspectwire.KindPQueue && c.Value != nil {
		pv, ok := c.Value.([]any)
		if !ok || len(pv) != 2 {
			return c, fmt.Errorf("a priority queue's entry is not [priority, value]: %s", compact(c.Value))
		}
		c.Priority, c.Value = pv[0], pv[1]
	}
	return c, nil
}

func dumpCmd(o *options) *cobra.Command {
	var page int
	cmd := &cobra.Command{
		Use:   "dump NAME",
		Short: "Print a collection's contents, read from one of its members",
		Long: "Print a collection's contents as one consistent version, without knowing its Go types.\n" +
			"NAME is the collection's name; when names collide, kind/name, and kind/name@types or\n" +
			"kind/name@id-prefix when those collide too (map/scores@string,int); or a group id prefix.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCollection(cmd, o, args[0], func(src *source) error {
				return src.dump(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), page)
			})
		},
	}
	cmd.Flags().IntVar(&page, "page", 1000, "entries per request")
	return cmd
}

// dump streams the collection page by page: as JSON, an object whose
// entries array is written as pages arrive; as a table, rows per page.
func (s *source) dump(ctx context.Context, out, progress io.Writer, page int) error {
	kind := s.g.kind()
	var (
		n     int
		first = true
		doc   *jsonEntries
	)
	err := s.pages(ctx, page, progress, func(r inspectwire.Reply) error {
		if first {
			if s.o.json {
				doc = newJSONEntries(out, dumpJSON{ID: s.g.ID.String(), Kind: kind, Name: s.g.name(),
					Types: s.g.types(), Version: r.Version, From: s.peer.String()})
			} else {
				fmt.Fprintf(out, "%s %s [%s] at version %d, %d entries, read from %s\n\n", kind, s.g.name(), s.g.types(), r.Version, r.Total, s.peer.Short())
			}
		}
		var rows [][]string
		for _, raw := range r.Items {
			c, err := decodeChange(kind, raw)
			if err != nil {
				return err
			}
			if s.o.json {
				if err := doc.item(entryJSON(kind, c)); err != nil {
					return err
				}
			} else {
				rows = append(rows, entryRow(kind, c))
			}
			n++
		}
		if !s.o.json && (len(rows) > 0 || first) {
			if err := table(out, entryHeaders(kind), rows); err != nil {
				return err
			}
		}
		first = false
		return nil
	})
	if err != nil {
		return err
	}
	if s.o.json {
		return doc.end(0)
	}
	return nil
}

// pages reads the collection's state page by page, all at one version, and
// hands each page to f; progress goes to progress.
func (s *source) pages(ctx context.Context, page int, progress io.Writer, f func(inspectwire.Reply) error) error {
	req := inspectwire.Request{Op: inspectwire.OpDump, Limit: page}
	n, total, version := 0, 0, uint64(0)
	for {
		r, err := s.ask(ctx, req, 0)
		if err != nil {
			return err
		}
		// A member serves one frozen version, and a page that is not the
		// last holds at least one entry: anything else would have this
		// loop (and snapshot save's file) go on without end.
		if req.Session == 0 {
			total, version = r.Total, r.Version
		}
		n += len(r.Items)
		switch {
		case r.Version != version || r.Total != total:
			return fmt.Errorf("node %s changed the dump's version or size mid-dump (version %d, %d entries, then version %d, %d entries)", s.peer.Short(), version, total, r.Version, r.Total)
		case n > total:
			return fmt.Errorf("node %s sent more than the %d entries it announced", s.peer.Short(), total)
		case !r.Done && len(r.Items) == 0:
			return fmt.Errorf("node %s sent an empty page %d that is not the last (%d of %d entries read)", s.peer.Short(), r.Page, n, total)
		}
		if err := f(r); err != nil {
			return err
		}
		if r.Done {
			return nil
		}
		if r.Total > 0 {
			fmt.Fprintf(progress, "inspect: %d/%d entries\n", n, r.Total)
		}
		req.Session, req.Page = r.Session, r.Page+1
	}
}

// dumpJSON is the head of a dump's JSON document; its entries follow.
type dumpJSON struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Types   string `json:"types"`
	Version uint64 `json:"version"`
	From    string `json:"from"`
}

func entryJSON(kind string, c change) any {
	switch kind {
	case inspectwire.KindMap:
		return map[string]any{"key": c.Key, "value": c.Value}
	case inspectwire.KindVec:
		return map[string]any{"index": c.Index, "value": c.Value}
	case inspectwire.KindPQueue:
		return map[string]any{"priority": c.Priority, "key": c.Key, "value": c.Value}
	}
	return c.Value
}

func entryHeaders(kind string) []string {
	switch kind {
	case inspectwire.KindMap:
		return []string{"KEY", "VALUE"}
	case inspectwire.KindVec:
		return []string{"INDEX", "VALUE"}
	case inspectwire.KindPQueue:
		return []string{"PRIORITY", "KEY", "VALUE"}
	}
	return []string{"VALUE"}
}

func entryRow(kind string, c change) []string {
	switch kind {
	case inspectwire.KindMap:
		return []string{compact(c.Key), compact(c.Value)}
	case inspectwire.KindVec:
		return []string{strconv.Itoa(*c.Index), compact(c.Value)}
	case inspectwire.KindPQueue:
		return []string{compact(c.Priority), compact(c.Key), compact(c.Value)}
	}
	return []string{compact(c.Value)}
}

// compact writes v as one line of JSON.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func watchCmd(o *options) *cobra.Command {
	var from int64
	cmd := &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a collection's changes until interrupted",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCollection(cmd, o, args[0], func(src *source) error {
				return src.watch(cmd.Context(), cmd.OutOrStdout(), from)
			})
		},
	}
	cmd.Flags().Int64Var(&from, "from", -1, "show the changes after this version (default: from now)")
	return cmd
}

type recordJSON struct {
	Version uint64   `json:"version"`
	Changes []change `json:"changes"`
}

// watch long-polls the member for changes and prints each command's changes
// as they come, until ctx ends.
func (s *source) watch(ctx context.Context, out io.Writer, from int64) error {
	kind := s.g.kind()
	var since uint64
	if from >= 0 {
		since = uint64(from)
	} else {
		r, err := s.ask(ctx, inspectwire.Request{Op: inspectwire.OpHead}, 0)
		if err != nil {
			return err
		}
		since = r.Version
	}
	if !s.o.json {
		fmt.Fprintf(out, "watching %s %s after version %d on %s (interrupt to stop)\n", kind, s.g.name(), since, s.peer.Short())
	}
	const poll = 10 * time.Second
	for {
		r, err := s.ask(ctx, inspectwire.Request{Op: inspectwire.OpChanges, Since: since, Wait: poll}, poll)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transport.ErrUnreachable) {
				return fmt.Errorf("lost %s: %w", s.peer.Short(), err)
			}
			return err
		}
		for _, rec := range r.Records {
			rj := recordJSON{Version: rec.Version}
			for _, raw := range rec.Changes {
				c, err := decodeChange(kind, raw)
				if err != nil {
					return err
				}
				rj.Changes = append(rj.Changes, c)
			}
			if s.o.json {
				b, err := json.Marshal(rj)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
				continue
			}
			for _, c := range rj.Changes {
				fmt.Fprintf(out, "v%d %s\n", rj.Version, describeChange(kind, c))
			}
		}
		if r.Version > since {
			since = r.Version
		}
	}
}

func describeChange(kind string, c change) string {
	switch {
	case c.Op == "clear":
		return "clear"
	case (kind == inspectwire.KindMap || kind == inspectwire.KindPQueue) && c.Op == "remove":
		return "remove " + compact(c.Key)
	case kind == inspectwire.KindPQueue:
		return c.Op + " " + compact(c.Key) + " = " + compact(c.Value) + " at " + compact(c.Priority)
	case kind == inspectwire.KindMap:
		return c.Op + " " + compact(c.Key) + " = " + compact(c.Value)
	case kind == inspectwire.KindVec && (c.Op == "remove" || c.Op == "truncate"):
		return c.Op + " " + strconv.Itoa(*c.Index)
	case kind == inspectwire.KindVec:
		return c.Op + " [" + strconv.Itoa(*c.Index) + "] = " + compact(c.Value)
	}
	return c.Op + " " + compact(c.Value)
}
