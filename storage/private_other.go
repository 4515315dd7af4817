//go:build !unix

package storage

import "github.com/cockroachdb/pebble/v2/vfs"

// restrictFile does nothing where modes are not Unix permissions.
func restrictFile(vfs.File) error { return nil }
