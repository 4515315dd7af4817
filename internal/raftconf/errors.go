package raftconf

import "errors"

// ErrInvalid is returned by Decode for bytes that are not a Raft
// configuration.
var ErrInvalid = errors.New("raftconf: configuration does not decode")
