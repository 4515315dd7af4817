//go:build !race

package transport

// raceSlowdown scales the latency bounds of the flood tests; see
// frames_race_test.go.
const raceSlowdown = 1
