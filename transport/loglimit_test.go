package transport

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A logLimit lets one line through per interval, whoever races for it.
func TestLogLimit(t *testing.T) {
	var l logLimit
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if l.allow(time.Hour) {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := passed.Load(); n != 1 {
		t.Fatalf("%d lines through in one interval, want 1", n)
	}
	var short logLimit
	if !short.allow(time.Millisecond) {
		t.Fatal("the first line was held back")
	}
	eventually(t, "the next interval", func() bool { return short.allow(time.Millisecond) })
}
