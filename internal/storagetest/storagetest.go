// Package storagetest makes storage fail on purpose, for tests of what the
// layers above do with its errors.
package storagetest

import "github.com/mosaik-go/mosaik/storage"

// FailRelease returns p with every group's Release failing with err.
func FailRelease(p storage.Provider, err error) storage.Provider { return failRelease{p, err} }

type failRelease struct {
	storage.Provider
	err error
}

func (f failRelease) Stores(id [32]byte) (storage.Stores, error) {
	s, err := f.Provider.Stores(id)
	s.Release = func() error { return f.err }
	return s, err
}
