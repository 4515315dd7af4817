//go:build !race

package groups

const raceSlowdown = 1
