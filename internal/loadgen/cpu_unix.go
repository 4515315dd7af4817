//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// CPUTime is the CPU this process used so far, user and system.
func CPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
