//go:build !unix

package main

import "time"

// cpuTime is unknown here: the idle CPU column shows "?".
func cpuTime() (time.Duration, bool) { return 0, false }
