package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/mosaik-go/mosaik/transport"
)

// Environment variables inspect reads a group secret from, when no flag
// names one. A flag is visible to every local user in the process list; a
// file or the environment is not.
const (
	envSecret     = "MOSAIK_SECRET"     // 64 hex digits
	envPassphrase = "MOSAIK_PASSPHRASE" // stretched as transport.SecretFromPassphrase does
)

// secret returns the group secret the flags or the environment give, or
// the zero Secret when none is given. Giving more than one is an error.
func (o *options) secret() (transport.Secret, error) {
	var given []string
	var s transport.Secret
	var err error
	use := func(name string, f func() (transport.Secret, error)) {
		given = append(given, name)
		if err == nil {
			s, err = f()
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if o.secretHex != "" {
		use("--secret", func() (transport.Secret, error) { return transport.ParseSecret(o.secretHex) })
	}
	if o.secretFile != "" {
		use("--secret-file", func() (transport.Secret, error) {
			b, err := os.ReadFile(o.secretFile)
			if err != nil {
				return transport.Secret{}, err
			}
			return transport.ParseSecret(strings.TrimSpace(string(b)))
		})
	}
	if len(given) == 0 {
		if v := os.Getenv(envSecret); v != "" {
			use(envSecret, func() (transport.Secret, error) { return transport.ParseSecret(strings.TrimSpace(v)) })
		} else if v := os.Getenv(envPassphrase); v != "" {
			use(envPassphrase, func() (transport.Secret, error) { return transport.SecretFromPassphrase(v) })
		}
	}
	if len(given) > 1 {
		return transport.Secret{}, usageError{fmt.Errorf("give one secret, not %s", strings.Join(given, " and "))}
	}
	return s, err
}
