//go:build race

package transport

// raceSlowdown scales the latency bounds of the flood tests: the race
// detector makes the frame path (allocation, maps, locks) several times
// slower, and the flood's backlog with it.
const raceSlowdown = 4
