// Package raftconf decodes Raft configuration entries without panicking.
package raftconf

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// Decode is raft.DecodeConfiguration, which panics on bytes it cannot
// decode, with the panic returned as an error wrapping ErrInvalid. It does
// not keep b.
func Decode(b []byte) (c raft.Configuration, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = raft.Configuration{}, fmt.Errorf("%w: %v", ErrInvalid, r)
		}
	}()
	return raft.DecodeConfiguration(b), nil
}
