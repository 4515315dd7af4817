package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// Network, Subscription, RaftTransport and pipeline a test starts must be
// closed, and closing must stop everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
