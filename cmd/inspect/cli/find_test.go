package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/mosaik-go/mosaik/groups"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
)

// TestFindGroup: a name shared by collections that differ only by their
// types, or by nothing inspect shows (timings), is told apart by
// kind/name@types or name@id-prefix; the ambiguity error lists each
// candidate by the reference that picks it.
func TestFindGroup(t *testing.T) {
	mk := func(idByte byte, kind, name, types string) *group {
		var id groups.ID
		id[0], id[31] = idByte, idByte
		return &group{ID: id, Labels: map[string]string{inspectwire.LabelKind: kind, inspectwire.LabelName: name, inspectwire.LabelTypes: types}}
	}
	intMap := mk(0xa1, "map", "typed", "string,int")
	strMap := mk(0xb2, "map", "typed", "string,string")
	strMap2 := mk(0xb3, "map", "typed", "string,string") // other timings
	set := mk(0xc4, "set", "typed", "string")
	odd := mk(0xd5, "map", "a/b@c", "interface {}")
	plain := &group{ID: groups.ID{0xe6}, Labels: map[string]string{}}
	gs := []*group{intMap, strMap, strMap2, set, odd, plain}

	for ref, want := range map[string]*group{
		"set/typed":                 set,
		"map/typed@string,int":      intMap,
		"typed@string,int":          intMap,
		"map/typed@ string, int ":   intMap, // spaces do not matter
		"map/typed@a1000000":        intMap,
		"typed@b2":                  strMap,
		"map/typed@b300":            strMap2,
		"typed@string":              set,
		"a/b@c":                     odd, // a name as it is comes first
		"map/a/b@c":                 odd,
		"map/a/b@c@interface{}":     odd,
		"e600":                      plain,
		"set/typed@C4000000":        set,
		"typed@string,int@a1000000": nil,
	} {
		g, err := findGroup(gs, ref)
		switch {
		case want == nil && !errors.Is(err, errUnknown):
			t.Errorf("%q: %v, %v; want unknown", ref, g, err)
		case want != nil && (err != nil || g != want):
			t.Errorf("%q: %v, %v; want %s", ref, g, err, want.ID.Short())
		}
	}

	for _, tc := range []struct {
		ref   string
		parts []string
	}{
		{"typed", []string{"map/typed@string,int (map typed[string,int], a1000000)", "set/typed (set typed[string], c4000000)",
			"map/typed@b2000000 (map typed[string,string], b2000000)", "map/typed@b3000000"}},
		{"map/typed", []string{"map/typed@string,int (", "map/typed@b2000000 (", "map/typed@b3000000 ("}},
		{"map/typed@string,string", []string{"map/typed@b2000000 (", "map/typed@b3000000 ("}},
		{"typed@b", []string{"map/typed@b2000000 (", "map/typed@b3000000 ("}},
	} {
		_, err := findGroup(gs, tc.ref)
		var amb *ambiguousError
		if !errors.As(err, &amb) {
			t.Errorf("%q: %v, want ambiguous", tc.ref, err)
			continue
		}
		for _, p := range tc.parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%q: %q does not say %q", tc.ref, err, p)
			}
		}
		if strings.Contains(tc.ref, "map/") && strings.Contains(err.Error(), "set/typed") {
			t.Errorf("%q: %q lists a set", tc.ref, err)
		}
		// Each candidate's reference picks it alone.
		for _, c := range amb.Candidates {
			if g, err := findGroup(gs, c.Ref); err != nil || g.ID != c.ID {
				t.Errorf("%q: candidate %q resolves to %v, %v", tc.ref, c.Ref, g, err)
			}
		}
	}
}
