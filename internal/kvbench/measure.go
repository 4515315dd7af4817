package main

import (
	"context"
	"time"

	"github.com/mosaik-go/mosaik/internal/loadgen"
)

// stat is what one workload measured, and whether the leader moved.
type stat struct {
	loadgen.Stat
	moved bool // the leader was another node after the run

	// Per operation, warm-up included (mosaik only: NATS KV's servers
	// share the process): the messages the nodes sent, and the CPU time
	// of the whole process, servers included.
	msgsPerOp  float64
	cpuPerOpUs float64
}

// op is one operation of worker w, its i-th (see loadgen.Op).
type op = loadgen.Op

// measure is loadgen.Measure.
func measure(ctx context.Context, conc int, warm, dur time.Duration, f op) stat {
	return stat{Stat: loadgen.Measure(ctx, conc, warm, dur, f)}
}
