package transport

import "errors"

var (
	// ErrClosed is returned by operations on a closed Network or transport.
	ErrClosed = errors.New("transport: closed")
	// ErrTooLarge is returned for a message over the size limit.
	ErrTooLarge = errors.New("transport: message too large")
	// ErrUnreachable is returned when a request cannot reach its peer (no
	// reply before the deadline, or the message was dropped).
	ErrUnreachable = errors.New("transport: peer unreachable")
)
