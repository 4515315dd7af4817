package groups

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// group, network and embedded server must stop everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
