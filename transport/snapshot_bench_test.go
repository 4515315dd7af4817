package transport

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkInstallSnapshot12MB streams a 12 MB snapshot between two sealed
// nodes (about what a map of 100,000 entries of 116 bytes takes), the
// receiver reading it whole as Raft would.
func BenchmarkInstallSnapshot12MB(b *testing.B) {
	const size = 12 << 20
	p := sealedPair(b)
	serve(b, p.b, func(rpc raft.RPC) {
		_, err := io.Copy(io.Discard, rpc.Reader)
		rpc.Respond(&raft.InstallSnapshotResponse{RPCHeader: header(p.b.LocalAddr()), Term: 10, Success: true}, err)
	})
	data := randomBytes(size, 1)
	args := &raft.InstallSnapshotRequest{
		RPCHeader: header(p.a.LocalAddr()), SnapshotVersion: raft.SnapshotVersionMax,
		Term: 10, Leader: []byte(p.a.LocalAddr()), LastLogIndex: 100, LastLogTerm: 9,
		Configuration: testConfiguration(), ConfigurationIndex: 50, Size: size,
	}
	b.SetBytes(size)
	for b.Loop() {
		var resp raft.InstallSnapshotResponse
		if err := p.a.InstallSnapshot("b", p.b.LocalAddr(), args, &resp, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
