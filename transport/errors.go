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
	// ErrConnectionLost is returned for a request whose request or reply
	// may have been lost with a NATS server: this node's connection, or
	// the peer's, dropped and came back while it waited. The request may
	// or may not have reached the peer; sending it again is the caller's
	// choice.
	ErrConnectionLost = errors.New("transport: connection to NATS lost while waiting")
)
