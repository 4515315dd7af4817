package storage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: closing
// a DB must stop everything Pebble started for it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
