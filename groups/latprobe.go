package groups

import (
	"github.com/hashicorp/raft"

	"github.com/mosaik-go/mosaik/internal/lat"
	"github.com/mosaik-go/mosaik/transport"
)

// Temporary latency probes (issue 15 profiling).
var (
	stSubmit      = lat.Step("g.submit enqueue")
	stRunGot      = lat.Step("g.runloop got call")
	stFwdEncode   = lat.Step("g.fwd encode")
	stFwdSent     = lat.Step("g.fwd Call returned")
	stAppendCh    = lat.Step("g.local appendCh send")
	stCtlFwd      = lat.Step("g.ctl forward recv")
	stAppendOne   = lat.Step("g.appendOne start")
	stApplyRet    = lat.Step("g.raft.Apply returned")
	stFSMStart    = lat.Step("g.fsm ApplyBatch start")
	stFSMEnd      = lat.Step("g.fsm ApplyBatch end")
	stFinish      = lat.Step("g.completer finished")
	stReplySent   = lat.Step("g.completer reply sent")
	stTellCommit  = lat.Step("g.tellCommit returned")
	stRepAppended = lat.Step("g.reply appended recv")
	stRepOutcome  = lat.Step("g.reply outcome recv")
	stHandleRep   = lat.Step("g.runloop handleReplies")
	stResolved    = lat.Step("g.resolved")
	stSubmitRet   = lat.Step("g.submit returned")
	stAppliedRet  = lat.Step("g.when.Applied returned")
)

func mark(step int, id transport.PeerID) {
	if lat.On() {
		lat.MarkID(step, id.String())
	}
}

type probeFSM struct {
	raft.BatchingFSM
	self transport.PeerID
}

func (f probeFSM) ApplyBatch(logs []*raft.Log) []any {
	mark(stFSMStart, f.self)
	r := f.BatchingFSM.ApplyBatch(logs)
	mark(stFSMEnd, f.self)
	return r
}
