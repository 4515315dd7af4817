// Command scalebench measures what many collections cost, the table of
// issue 14: three nodes in this process, three transport networks on one
// embedded NATS server (the first node embeds it, the other two reach it
// in process), each opening the same N Map[string, int] writers.
//
//	idle   for each N of -n: every node opens c0..cN-1, 32 at a time,
//	       until all 3N handles are online (the time to that is a
//	       column), writes one key to each, then idles for -idle and
//	       reports the process's CPU over that window (getrusage, user +
//	       sys, as % of one core), the heap after a GC, the goroutines,
//	       and the messages per second the server took in (varz
//	       in_msgs, what the nodes published) and sent out (out_msgs,
//	       deliveries). Then every handle is closed and the goroutines
//	       must come back to what the three bare nodes had. A row whose
//	       handles are not all online within -timeout says how many were
//	       and is measured as it is.
//	write  -wn collections are opened on every node; 64 writers Insert
//	       across them (writer w's i-th insert goes to collection
//	       (w+i) mod wn, at the node that leads it), then 64 writers
//	       Insert into one of them (c0, at its leader) while the others
//	       stay open and idle; the ratio of the two is printed.
//	failover  with one collection open on every node, then with
//	       -failover, the node leading c0 is cut off (transport.Faults
//	       Isolate) and the time until a write to c0 applies at another
//	       node is measured.
//
// How collections are opened is a mode (see opener): -mode group, the
// default, opens each map as its own Raft group; -mode space opens them
// all in one collections.MapSpace per node.
//
//	go run ./internal/scalebench                     # N = 10, 100, 1000; idle 15 s; write 5 s
//	go run ./internal/scalebench -n 10,100 -idle 5s -d 2s
//	go run ./internal/scalebench -n 100 -cpuprofile idle.pprof -goroutines g.txt -subjects -write=false
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	cfg := config{progress: os.Stderr}
	ns := flag.String("n", "10,100,1000", "collections per node, one idle row each, comma separated")
	flag.DurationVar(&cfg.idle, "idle", 15*time.Second, "idle window of each row")
	flag.DurationVar(&cfg.timeout, "timeout", 3*time.Minute, "the longest a row waits for all its handles to come online")
	flag.IntVar(&cfg.openConc, "conc", 32, "collections a node opens at a time")
	flag.StringVar(&cfg.mode, "mode", "group", "how collections are opened: "+strings.Join(modeNames(), ", "))
	flag.BoolVar(&cfg.write, "write", true, "run the write phase")
	flag.IntVar(&cfg.writeN, "wn", 100, "collections of the write phase")
	flag.IntVar(&cfg.writers, "writers", 64, "writers of the write phase")
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "measured duration of each write workload")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before each write workload, not counted")
	flag.IntVar(&cfg.failN, "failover", 100, "time a failover with one collection open and with this many (0: none)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the idle window of the row -profilen to this file")
	flag.StringVar(&cfg.goroutineProfile, "goroutines", "", "write the goroutines (grouped by stack) at the end of the idle window of the row -profilen to this file")
	flag.IntVar(&cfg.profileN, "profilen", 100, "the row the profiles are of")
	flag.BoolVar(&cfg.subjects, "subjects", false, "after the idle window of the row -profilen, count its messages by subject for up to 5 s")
	flag.Parse()
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "scalebench: bad -n %q\n", s)
			os.Exit(2)
		}
		cfg.ns = append(cfg.ns, n)
	}
	if !validMode(cfg.mode) {
		fmt.Fprintf(os.Stderr, "scalebench: unknown mode %q (known: %s)\n", cfg.mode, strings.Join(modeNames(), ", "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("scalebench %s: mode %s, GOMAXPROCS %d, idle %v, load average %s\n\n",
		time.Now().UTC().Format(time.DateTime), cfg.mode, runtime.GOMAXPROCS(0), cfg.idle, loadAverage())
	res, err := run(ctx, cfg)
	idleTable(os.Stdout, res.idle)
	if res.write != nil {
		fmt.Println()
		writeTable(os.Stdout, *res.write)
	}
	if len(res.failover) > 0 {
		fmt.Println()
		failoverTable(os.Stdout, res.failover)
	}
	fmt.Printf("\nload average after: %s\n", loadAverage())
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
