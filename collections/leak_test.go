package collections

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// handle, group, network and watch a test starts must stop everything it
// started when closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
