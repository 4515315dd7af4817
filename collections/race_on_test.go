//go:build race

package collections

// raceEnabled: the race detector makes some closures allocate.
const raceEnabled = true
