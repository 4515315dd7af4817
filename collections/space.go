package collections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
	"github.com/mosaik-go/mosaik/transport"
)

// MaxMapNameSize is the longest name of a map in a space, in bytes.
const MaxMapNameSize = 1024

// kindMapSpace names a map space in group labels and in its signature.
const kindMapSpace = "mapspace"

// MapSpace hosts many maps of one type in one Raft group: a map per tenant,
// per market or per job queue, where a group per map would cost a group's
// heartbeats, goroutines and memory each. Every map of a space has the
// whole Map API and its semantics (its writes are linearizable, its
// versions only grow, its watches see each of its changes), and opening
// one costs no group join: it is online as soon as its space is.
//
// What the maps of a space share is the group: one leader and one log, so
// writes to different maps are ordered with each other, a write's version
// is a position in the space's log (so a map's versions skip the positions
// of the other maps' writes), and a failover moves every map at once. A
// member of the space holds every map of it, whether or not it opened
// them. Use one group per collection (NewMapWriter) for a few collections
// that are large or busy, each with its own leader and log; use a space
// for many small ones, or many of one kind.
//
// A space is safe for concurrent use. It owns its maps' handles: closing
// the space closes them.
type MapSpace[K comparable, V any] struct {
	*handle[spaceCmd[K, V]]
	sm     *spaceMachine[K, V]
	writer bool

	mu     sync.Mutex
	open   map[string]*spaceMember // the maps with an open handle, by name
	closed bool

	ended sync.WaitGroup // the goroutine that ends the maps' handles with the group
}

// spaceCmd is a command of a map space: a map's command and the map's name.
type spaceCmd[K comparable, V any] struct {
	_   struct{} `cbor:",toarray"`
	Map string
	Cmd mapCmd[K, V]
}

// NewMapSpace opens the map space called name on net as a writer: its
// maps' handles (Writer, Reader) can write and read. The options are those
// of a single map (WithSecret, WithStorage, ...), for the whole space.
func NewMapSpace[K comparable, V any](net *transport.Network, name string, opts ...Option) (*MapSpace[K, V], error) {
	return openMapSpace[K, V](net, name, true, opts)
}

// NewMapSpaceReader opens the map space called name on net as a reader:
// its maps can be read (Reader) but not written.
func NewMapSpaceReader[K comparable, V any](net *transport.Network, name string, opts ...Option) (*MapSpace[K, V], error) {
	return openMapSpace[K, V](net, name, false, opts)
}

func openMapSpace[K comparable, V any](net *transport.Network, name string, writer bool, opts []Option) (*MapSpace[K, V], error) {
	h, sm, err := openWith[spaceCmd[K, V]](net, kindMapSpace, name, typeName[K]()+","+typeName[V](), newSpaceMachine[K, V], writer, opts)
	if err != nil {
		return nil, err
	}
	s := &MapSpace[K, V]{handle: h, sm: sm, writer: writer, open: map[string]*spaceMember{}}
	s.ended.Add(1)
	go func() {
		defer s.ended.Done()
		<-h.g.Done()
		s.endMaps()
	}()
	return s, nil
}

// Writer opens the map called name of the space for writing. It is online
// when the space is. A space opened with NewMapSpaceReader has no writers.
func (s *MapSpace[K, V]) Writer(name string) (*MapWriter[K, V], error) {
	if !s.writer {
		return nil, fmt.Errorf("collections: map space %q was opened as a reader: it has no writers", s.name)
	}
	r, err := s.openMap(name)
	if err != nil {
		return nil, err
	}
	return &MapWriter[K, V]{r}, nil
}

// Reader opens the map called name of the space for reading.
func (s *MapSpace[K, V]) Reader(name string) (*MapReader[K, V], error) {
	r, err := s.openMap(name)
	if err != nil {
		return nil, err
	}
	return &MapReader[K, V]{r}, nil
}

// openMap opens a handle on the map called name. A map has one handle at
// a time on a node, as a collection does on a network.
func (s *MapSpace[K, V]) openMap(name string) (mapReads[K, V], error) {
	if err := checkMapName(name); err != nil {
		return mapReads[K, V]{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.handle.closed.Load() {
		return mapReads[K, V]{}, ErrClosed
	}
	if _, dup := s.open[name]; dup {
		return mapReads[K, V]{}, fmt.Errorf("%w: map %q of space %q", ErrAlreadyOpen, name, s.name)
	}
	m := s.sm.hold(name)
	mem := &spaceMember{member: s.g, done: make(chan struct{})}
	mem.leave = func() {
		s.mu.Lock()
		if s.open[name] == mem {
			delete(s.open, name)
		}
		s.mu.Unlock()
		s.sm.release(name)
	}
	h := &handle[mapCmd[K, V]]{name: name, net: s.net, g: mem, m: m, shared: true, cmdExtra: len(name) + 8}
	h.exec = func(ctx context.Context, cmds []mapCmd[K, V]) ([]groups.Reply[reply], error) {
		wrapped := make([]spaceCmd[K, V], len(cmds))
		for i, c := range cmds {
			wrapped[i] = spaceCmd[K, V]{Map: name, Cmd: c}
		}
		return s.exec(ctx, wrapped)
	}
	what := describe(inspectwire.KindMap, typeName[K]()+","+typeName[V]()) + " " + strconv.Quote(name) + " of space " + strconv.Quote(s.name)
	h.when = &When{g: s.g.When(), version: m.version, what: what, done: mem.done, changed: m.hist.changed}
	s.open[name] = mem
	return mapReads[K, V]{handle: h, m: m}, nil
}

// endMaps ends the waits and watches of every map handle: the space's
// group closed.
func (s *MapSpace[K, V]) endMaps() {
	s.mu.Lock()
	s.closed = true
	open := make([]*spaceMember, 0, len(s.open))
	for _, m := range s.open {
		open = append(open, m)
	}
	s.mu.Unlock()
	for _, m := range open {
		m.end()
	}
}

// Maps returns the names of the maps of the space that hold entries, in
// order: the same on every member at the same Version.
func (s *MapSpace[K, V]) Maps() []string { return s.sm.written() }

// Close leaves the space and closes the handles of its maps: their reads
// keep answering from the last state; writes and waits return ErrClosed.
// It returns what the group member's Close returned, every call the same.
func (s *MapSpace[K, V]) Close() error {
	err := s.handle.Close()
	s.ended.Wait()
	s.sm.closeIndexes()
	return err
}

// spaceMember is a map handle's view of its space's group: the group's,
// but closing it closes the map's handle only.
type spaceMember struct {
	member
	done  chan struct{} // closed when the handle or the space closes
	once  sync.Once
	leave func() // forgets the handle in its space
}

func (m *spaceMember) Done() <-chan struct{} { return m.done }

func (m *spaceMember) end() { m.once.Do(func() { close(m.done) }) }

// Close closes the map's handle, not the group.
func (m *spaceMember) Close() error {
	m.end()
	m.leave()
	return nil
}

// checkMapName checks the name of a map of a space. A name must be UTF-8:
// the log's decoder refuses a command whose text is not, so its writes
// would commit and never apply.
func checkMapName(name string) error {
	switch {
	case name == "":
		return errors.New("collections: empty map name")
	case len(name) > MaxMapNameSize:
		return fmt.Errorf("%w: map name of %d bytes, limit %d", ErrTooLarge, len(name), MaxMapNameSize)
	case !utf8.ValidString(name):
		return fmt.Errorf("collections: map name %q is not UTF-8", name)
	}
	return nil
}

// spaceMachine is a map space's state machine: a mapMachine per map, made
// when a command first names the map or a handle opens it. An empty map
// that was never written is the same as no map, so making one for a
// handle changes nothing another member could see.
//
// It owns mu, which guards maps and touched. Apply, Publish and Restore
// run on the group's apply goroutine; handles make maps from theirs.
type spaceMachine[K comparable, V any] struct {
	sig     string
	history int
	applied atomic.Uint64 // the last index applied, as of the last Publish
	last    Version       // the last index applied; apply goroutine only

	mu      sync.Mutex
	maps    map[string]*mapMachine[K, V]
	touched map[string]*mapMachine[K, V] // applied to since the last Publish
	// floor is the version of the last snapshot restored, or of the last
	// empty map dropped: a map absent here may have changed before it, so a
	// map made since starts there, its history empty, as the maps restored
	// do.
	floor Version
	// held counts the handles open on each map: a map that is empty and
	// held by none is dropped when a Publish sees it, so that maps written
	// and emptied, or only named, cost nothing. recheck holds the maps
	// whose last handle closed, for the next Publish to look at.
	held    map[string]int
	recheck map[string]bool
}

func newSpaceMachine[K comparable, V any](history int) *spaceMachine[K, V] {
	return &spaceMachine[K, V]{
		sig:     "mosaik.collections." + kindMapSpace + ".v1[" + typeName[K]() + "," + typeName[V]() + "]",
		history: history,
		maps:    map[string]*mapMachine[K, V]{},
		touched: map[string]*mapMachine[K, V]{},
		held:    map[string]int{},
		recheck: map[string]bool{},
	}
}

// hold returns the map called name for a handle, made empty if there is
// none, and keeps it until release.
func (s *spaceMachine[K, V]) hold(name string) *mapMachine[K, V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[name]++
	return s.mapLocked(name)
}

// release ends a hold; the next Publish drops the map if it is empty.
func (s *spaceMachine[K, V]) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[name]--; s.held[name] <= 0 {
		delete(s.held, name)
		s.recheck[name] = true
	}
}

func (s *spaceMachine[K, V]) mapLocked(name string) *mapMachine[K, V] {
	m, ok := s.maps[name]
	if !ok {
		m = newMapMachine[K, V](s.history)
		if s.floor > 0 {
			m.install(newVersionedTreeLoader[K, V](m.cmp), s.floor)
		}
		s.maps[name] = m
	}
	return m
}

// Signature implements rsm.StateMachine.
func (s *spaceMachine[K, V]) Signature() string { return s.sig }

// Apply implements rsm.StateMachine.
func (s *spaceMachine[K, V]) Apply(cmd spaceCmd[K, V], ctx rsm.ApplyContext) { s.ApplyReply(cmd, ctx) }

// Query implements rsm.StateMachine; reads go through the maps' states.
func (s *spaceMachine[K, V]) Query(struct{}) reply { return reply{} }

func (s *spaceMachine[K, V]) version() Version { return Version(s.applied.Load()) }

// ApplyReply implements rsm.Replier. A command naming no map, or one over
// MaxMapNameSize, which no handle sends, does not apply.
func (s *spaceMachine[K, V]) ApplyReply(cmd spaceCmd[K, V], ctx rsm.ApplyContext) any {
	s.last = Version(ctx.LogPosition().Index)
	if checkMapName(cmd.Map) != nil {
		return reply{}
	}
	s.mu.Lock()
	m := s.mapLocked(cmd.Map)
	s.touched[cmd.Map] = m
	s.mu.Unlock()
	return m.ApplyReply(cmd.Cmd, ctx)
}

// Publish implements rsm.Publisher: it publishes the maps applied to.
func (s *spaceMachine[K, V]) Publish() {
	s.mu.Lock()
	touched := make([]string, 0, len(s.touched))
	maps := make([]*mapMachine[K, V], 0, len(s.touched))
	for name, m := range s.touched {
		touched = append(touched, name)
		maps = append(maps, m)
	}
	clear(s.touched)
	s.mu.Unlock()
	for _, m := range maps {
		m.Publish()
	}
	s.applied.Store(uint64(s.last))
	s.dropEmpty(touched)
}

// dropEmpty drops the maps of names, and those to recheck, that are empty
// now and held by no handle. On the apply goroutine, after Publish: what
// they show is all they hold.
func (s *spaceMachine[K, V]) dropEmpty(names []string) {
	var dropped []*mapMachine[K, V]
	s.mu.Lock()
	drop := func(name string) {
		m, ok := s.maps[name]
		if !ok || s.held[name] > 0 || m.workLen() > 0 {
			return
		}
		delete(s.maps, name)
		s.floor = max(s.floor, s.last)
		dropped = append(dropped, m)
	}
	for _, name := range names {
		drop(name)
	}
	for name := range s.recheck {
		drop(name)
	}
	clear(s.recheck)
	s.mu.Unlock()
	for _, m := range dropped {
		m.closeIndex()
	}
}

// written returns the names of the maps that hold entries, sorted.
func (s *spaceMachine[K, V]) written() []string {
	var names []string
	for name, m := range s.all() {
		// Outside s.mu: a read may wait for the batch applying now,
		// whose Apply takes s.mu.
		if m.load().m.Len() > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// all returns the maps by name, as they are now.
func (s *spaceMachine[K, V]) all() map[string]*mapMachine[K, V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.maps)
}

// closeIndexes stops the index builders of every map: nothing applies now.
func (s *spaceMachine[K, V]) closeIndexes() {
	for _, m := range s.all() {
		m.closeIndex()
	}
}

// A space snapshot is a collection snapshot header (spaceSnapshotMagic,
// the space's version, the number of maps) and then, per map in name
// order, a field with its name followed by the map's own snapshot
// (mapSnapshotMagic). Empty maps are left out: an empty map is the same as
// none.
const spaceSnapshotMagic = "mosaik.mapspace.v1"

// Snapshot implements rsm.Snapshotter: it captures every map's immutable
// state.
func (s *spaceMachine[K, V]) Snapshot() (rsm.Snapshot, error) {
	type named struct {
		name string
		st   *mapState[K, V]
	}
	var held []named
	for name, m := range s.all() {
		if st := m.load(); st.m.Len() > 0 {
			held = append(held, named{name, st})
		}
	}
	slices.SortFunc(held, func(a, b named) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	v := s.version()
	return snapshotFunc(func(w io.Writer) error {
		return writeSnapshotAs(w, spaceSnapshotMagic, v, len(held), func(sw *snapshotWriter) error {
			for _, m := range held {
				if err := writeField(sw, m.name); err != nil {
					return err
				}
				// The map's snapshot goes into the space's buffer.
				if err := writeSection(sw.bw, mapSnapshotMagic, m.st.v, m.st.m.Len(), mapRecords(m.st)); err != nil {
					return err
				}
				sw.records++
			}
			return nil
		})
	}), nil
}

// Restore implements rsm.Snapshotter. It reads the whole snapshot before it
// changes anything, so a bad one leaves the state as it was.
func (s *spaceMachine[K, V]) Restore(r io.Reader) error {
	type loaded struct {
		name string
		b    *treeLoader[K, V]
		v    Version
	}
	var maps []loaded
	cmp := comparerFor[K]()
	v, err := readSnapshotOf(r, func(h snapshotHeader) func(*snapshotReader) error {
		if h.Magic != spaceSnapshotMagic {
			return nil
		}
		return func(sr *snapshotReader) error {
			var name string
			if err := readField(sr, &name); err != nil {
				return err
			}
			if err := checkMapName(name); err != nil {
				return err
			}
			if len(maps) > 0 && name <= maps[len(maps)-1].name {
				return fmt.Errorf("map %q out of order", name)
			}
			// The reader's buffer is large enough for the map's reader to
			// share it, so it reads no further than its own records.
			b, mv, err := readMapSnapshot[K, V](sr.br, cmp)
			if err != nil {
				return fmt.Errorf("map %q: %w", name, err)
			}
			if mv == 0 || mv > h.Version {
				return fmt.Errorf("map %q at version %d outside (0, %d]", name, mv, h.Version)
			}
			maps = append(maps, loaded{name, b, mv})
			return nil
		}
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := make(map[string]bool, len(maps))
	for _, l := range maps {
		s.mapLocked(l.name).install(l.b, l.v)
		in[l.name] = true
	}
	// The maps the snapshot does not hold are empty, and their changes
	// before it unknown here, whether or not this member held them.
	for name, m := range s.maps {
		if !in[name] {
			m.install(newVersionedTreeLoader[K, V](cmp), v)
		}
	}
	s.floor = v
	clear(s.touched)
	s.last = v
	s.applied.Store(uint64(v))
	return nil
}
