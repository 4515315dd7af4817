package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mosaik-go/mosaik/groups"
)

// Exit codes of Main and Run, chosen by the error's type (exitCode), never
// by its text.
const (
	exitOK     = 0
	exitFailed = 1 // the command failed: unreachable, unknown name, refused, invalid file
	exitUsage  = 2 // the command was used wrongly: flags, arguments, unknown command
)

// exitCode is the exit code for the error a command returned.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(usageError)):
		return exitUsage
	}
	return exitFailed
}

// usageError is a command used wrongly: a flag, an argument, a command
// name. Every other error is a failure.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

var (
	// errUnknown is a name or id that matches no group.
	errUnknown = errors.New("unknown")
	// errNeedSecret is a sealed collection asked for without its secret.
	errNeedSecret = errors.New("it is sealed: pass its secret with --secret-file FILE, --secret HEX, or " + envSecret + " or " + envPassphrase + " in the environment")
	// errOperator is a node refusing or failing an operator command.
	errOperator = errors.New("refused")
	// errBadBackup is a file snapshot verify rejects.
	errBadBackup = errors.New("not a valid backup")
)

// ambiguousError is a reference that names more than one group; each
// candidate comes with a reference that names it alone.
type ambiguousError struct {
	Ref        string
	Candidates []candidate
}

// candidate is one of the groups an ambiguous reference names.
type candidate struct {
	Ref  string // names it alone: kind/name, kind/name@types or kind/name@id-prefix
	ID   groups.ID
	What string // kind, name and types
}

func (e *ambiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q is ambiguous: ", e.Ref)
	alike := false
	seen := map[string]bool{}
	for i, c := range e.Candidates {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s, %s)", c.Ref, c.What, c.ID.Short())
		alike = alike || seen[c.What]
		seen[c.What] = true
	}
	b.WriteString("; name one as shown")
	if alike {
		b.WriteString(" (collections of one kind, name and types differ in their group settings: `inspect groups` notes how)")
	}
	return b.String()
}
