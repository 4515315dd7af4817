package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: the exit code says what went wrong by the error's type,
// whatever its text: wrong usage (bad flags and values, arguments, unknown
// commands, at every level) is 2, a command that failed is 1, even when
// its message happens to read like a usage error.
func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "unknown command", "arg(s)")
	for _, tc := range []struct {
		args  []string
		code  int
		parts []string
	}{
		{[]string{"log", missing}, 1, []string{"arg(s)"}},
		{[]string{"log", filepath.Join(t.TempDir(), "unknown flag")}, 1, []string{"unknown flag"}},
		{[]string{"groups", "--timeout", "soon"}, 2, []string{"--timeout"}},
		{[]string{"groups", "--url"}, 2, []string{"needs an argument"}},
		{[]string{"groups", "--nonsense"}, 2, []string{"unknown flag"}},
		{[]string{"groups", "extra"}, 2, []string{"unknown command"}},
		{[]string{"dump"}, 2, []string{"accepts 1 arg(s)"}},
		{[]string{"nonsense"}, 2, []string{"unknown command", "nonsense"}},
		{[]string{"snapshot", "nonsense"}, 2, []string{"unknown command", "nonsense"}},
		{[]string{"snapshot", "verify", "a", "b"}, 2, []string{"accepts 1 arg(s)"}},
	} {
		runInspectFails(t, tc.code, tc.args, tc.parts...)
	}
	// With no command, the help, and success.
	for _, args := range [][]string{nil, {"snapshot"}} {
		if out := runInspectOK(t, args...); !strings.Contains(out, "Available Commands") {
			t.Errorf("inspect %v printed %q, want the help", args, out)
		}
	}
}
