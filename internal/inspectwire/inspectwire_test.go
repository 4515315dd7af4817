package inspectwire

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// The encodings are the protocol: each message's integer keys are pinned
// here, so that renumbering a key (or giving a field a name on the wire)
// fails a test, not an inspect talking to an older node.
func TestWireKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		hex  string
	}{
		{"request", Request{Op: OpRemoveMember, Session: 2, Page: 3, Limit: 4, Since: 5, Wait: 6, Peer: "p", Force: true, Issued: 9},
			"a9" + "0105" + "0202" + "0303" + "0404" + "0505" + "0606" + "076170" + "08f5" + "0909"},
		{"empty request", Request{Op: OpHead}, "a1" + "0103"},
		{"reply", Reply{Code: Busy, Msg: "m", Session: 3, Page: 4, Version: 5, Total: 6, Items: []Change{{Op: ChangeInsert}}, Done: true,
			Records: []Record{{Version: 7, Changes: []Change{{Op: ChangeClear}}}}, Recovery: &Recovery{}},
			"aa" + "0105" + "02616d" + "0303" + "0404" + "0505" + "0606" + "0781a10101" + "08f5" + "0981a2" + "0107" + "0281a10103" +
				"0a" + "a7" + "01f6" + "02f6" + "0300" + "0400" + "0500" + "0600" + "0800"},
		{"change", Change{Op: ChangeSet, Key: []byte{0x61, 0x6b}, Index: 2, Value: []byte{0x07}}, "a4" + "0104" + "02616b" + "0302" + "0407"},
		{"recovery", Recovery{Previous: []string{"a"}, Reachable: []string{}, LastIndex: 1, Committed: 2, Uncommitted: 3, HighestIndex: 4, HighestPeer: "b", MayBeLost: 5},
			"a8" + "01816161" + "0280" + "0301" + "0402" + "0503" + "0604" + "076162" + "0805"},
	} {
		b, err := Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tc.hex {
			t.Errorf("%s encodes as\n%s, want\n%s", tc.name, got, tc.hex)
		}
	}
}

// Numbers on the wire are the protocol's too.
func TestWireNumbers(t *testing.T) {
	ops := []Op{OpDump, OpChanges, OpHead, OpRecover, OpRemoveMember}
	for i, o := range ops {
		if int(o) != i+1 {
			t.Errorf("op %d is %d", i+1, o)
		}
	}
	codes := []Code{OK, Compacted, UnknownSession, Malformed, Closed, Busy, Refused, NotLeader, Failed}
	for i, c := range codes {
		if int(c) != i {
			t.Errorf("code %d is %d", i, c)
		}
	}
	changes := []ChangeOp{ChangeInsert, ChangeRemove, ChangeClear, ChangeSet, ChangeTruncate}
	names := []string{"insert", "remove", "clear", "set", "truncate"}
	for i, c := range changes {
		if int(c) != i+1 || c.String() != names[i] {
			t.Errorf("change op %d is %d %q", i+1, c, c)
		}
	}
}

func TestDecode(t *testing.T) {
	req := Request{Op: OpChanges, Since: 7, Wait: 3 * time.Second, Limit: -1}
	b, err := Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeRequest(b); err != nil || got != req {
		t.Errorf("request decodes as %+v, %v", got, err)
	}
	// A request is a flat map of a few numbers: a long array in it does
	// not decode, whatever its key.
	long := append([]byte{0xa2, 0x01, 0x01, 0x0a, 0x98, 100}, bytes.Repeat([]byte{0}, 100)...)
	if _, err := DecodeRequest(long); err == nil || !strings.Contains(err.Error(), "inspect request") {
		t.Errorf("a request with an array of 100: %v", err)
	}
	rep := Reply{Code: OK, Version: 9, Items: []Change{{Op: ChangeInsert, Key: []byte{0x01}, Value: []byte{0x02}}}}
	if b, err = Marshal(rep); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReply(b)
	if err != nil || got.Version != 9 || len(got.Items) != 1 || !bytes.Equal(got.Items[0].Value, []byte{0x02}) {
		t.Errorf("reply decodes as %+v, %v", got, err)
	}
	if _, err := DecodeReply([]byte{0xa1, 0x07, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Error("a reply announcing 2^64-1 items decodes")
	}
}
