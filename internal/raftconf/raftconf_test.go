package raftconf

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

func TestDecode(t *testing.T) {
	want := raft.Configuration{Servers: []raft.Server{
		{ID: "a", Address: "a:1", Suffrage: raft.Voter},
		{ID: "b", Address: "b:1", Suffrage: raft.Nonvoter},
	}}
	got, err := Decode(raft.EncodeConfiguration(want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %+v, %v; want %+v", got, err, want)
	}
	// raft.DecodeConfiguration panics on each of these.
	for _, b := range [][]byte{nil, {0xc1}, {0xc1, 0xff, 0x00}, {0xdf, 0xff, 0xff, 0xff, 0xff}} {
		if c, err := Decode(b); !errors.Is(err, ErrInvalid) || len(c.Servers) != 0 {
			t.Errorf("Decode(%x) = %+v, %v; want ErrInvalid", b, c, err)
		}
	}
}
