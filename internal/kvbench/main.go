// Command kvbench reproduces the performance table of issue 15: a
// replicated Map[string, []byte] with 100-byte values against a NATS
// JetStream KV bucket with three replicas, on the same three NATS servers.
//
// The servers run in this process, clustered by routes on loopback with
// JetStream on, as three nats-server processes would; the transport does
// not know them as its own, so each of the three mosaik nodes reaches its
// own server over TCP, as does each NATS client. Every mode starts afresh:
//
//	memory  mosaik in memory; JetStream memory storage
//	fsync   mosaik on Pebble (storage.Open, fsync on every commit);
//	        JetStream file storage with sync_interval: always
//
// Each workload runs for -warmup, then is measured for -d; a row gives
// the operations per second that started in the window and their p50 and
// p99 latencies, and says so when the leader moved during the run (the
// leader is found before each workload: the node all three writers agree
// on; for NATS, the bucket's stream leader in StreamInfo):
//
//	put1f put64f  Insert at concurrency 1 and 64 from a follower (NATS: Put
//	              through a server that does not lead the bucket's stream)
//	put1l put64l  the same at the leader
//	cas           8 workers on 16 hot keys: read locally, CompareExchange,
//	              again when it did not apply (NATS: Get, Update at the
//	              revision read); a row counts the updates that applied,
//	              and their latency includes the attempts before
//	read          a linearizable read at a follower, concurrency 1: Sync,
//	              then a local Get (NATS KV has none: its gets may be
//	              served by any replica)
//	readw         the same by a no-op write (Remove of a missing key)
//	              instead of Sync, the only way before Sync
//	get           a local Get at a follower, concurrency 1, of 1,000 keys
//	              (NATS: Get, a direct get any replica may answer)
//	join          a map of -join keys is written, then a fourth server is
//	              routed in and a reader opened on a new node there; the
//	              time until its Len() is -join (NATS: a client on that
//	              server watching every key until it has received them all)
//
//	go run ./internal/kvbench              # everything, about 4 minutes
//	go run ./internal/kvbench -short       # everything briefly (20-25 s), to try it
//	go run ./internal/kvbench -modes memory -workloads put1f,put64f -d 10s
//
// -cpuprofile, -memprofile and -trace record the whole run (use -nats=false and one
// workload to see mosaik alone); -floor measures only request/reply round
// trips at concurrency 1 on the same cluster, plain NATS clients on one
// server and across a route and the transport's sealed Scope, the floor
// under every message a write waits for.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"
)

func main() {
	cfg := config{progress: os.Stderr}
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "measured duration of each workload")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before each workload, not counted")
	modes := flag.String("modes", "memory,fsync", "modes, comma separated: memory, fsync")
	wls := flag.String("workloads", strings.Join(workloadNames(), ","), "workloads, comma separated")
	flag.BoolVar(&cfg.nats, "nats", true, "also measure NATS JetStream KV with 3 replicas")
	flag.IntVar(&cfg.joinKeys, "join", 100_000, "keys a new member catches up")
	short := flag.Bool("short", false, "everything briefly: -d 150ms -warmup 50ms -join 10000")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceOut := flag.String("trace", "", "write an execution trace of the whole run to this file")
	memprof := flag.String("memprofile", "", "write the allocations of the whole run to this file")
	floorOnly := flag.Bool("floor", false, "measure only request/reply round trips (NATS and the transport) on the cluster")
	flag.Parse()
	if *cpuprof != "" {
		record(*cpuprof, pprof.StartCPUProfile)
		defer pprof.StopCPUProfile()
	}
	if *traceOut != "" {
		record(*traceOut, trace.Start)
		defer trace.Stop()
	}
	if *memprof != "" {
		defer writeAllocs(*memprof)
	}
	if f := os.Getenv("MOSAIK_KVBENCH_LOG"); f != "" {
		fh, err := os.Create(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kvbench:", err)
			os.Exit(2)
		}
		defer fh.Close()
		debugLog = slog.New(slog.NewTextHandler(fh, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	}
	if *short {
		cfg.duration, cfg.warmup, cfg.joinKeys = 150*time.Millisecond, 50*time.Millisecond, 10_000
	}
	cfg.modes = strings.Split(*modes, ",")
	cfg.workloads = strings.Split(*wls, ",")
	for _, m := range cfg.modes {
		if m != "memory" && m != "fsync" {
			fmt.Fprintf(os.Stderr, "kvbench: unknown mode %q\n", m)
			os.Exit(2)
		}
	}
	for _, w := range cfg.workloads {
		if !slices.Contains(workloadNames(), w) {
			fmt.Fprintf(os.Stderr, "kvbench: unknown workload %q (known: %s)\n", w, strings.Join(workloadNames(), ","))
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("kvbench %s: GOMAXPROCS %d, %v measured after %v warm-up per workload, load average %s\n\n",
		time.Now().UTC().Format(time.DateTime), runtime.GOMAXPROCS(0), cfg.duration, cfg.warmup,
		strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	if *floorOnly {
		if err := floor(ctx, os.Stdout, cfg.duration); err != nil {
			fmt.Fprintln(os.Stderr, "kvbench:", err)
			os.Exit(1)
		}
		return
	}
	rs, err := run(ctx, cfg)
	table(os.Stdout, rs, cfg.nats)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		pprof.StopCPUProfile()
		trace.Stop()
		os.Exit(1)
	}
}

// writeAllocs writes the allocation profile of the run so far to path.
func writeAllocs(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
	}
}

// record starts a profile or trace into a new file at path, or exits.
func record(path string, start func(io.Writer) error) {
	f, err := os.Create(path)
	if err == nil {
		err = start(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(2)
	}
}
