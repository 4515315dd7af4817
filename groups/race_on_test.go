//go:build race

package groups

// raceSlowdown stretches deadlines of tests that move a lot of data: the
// race detector makes that work several times slower.
const raceSlowdown = 5
