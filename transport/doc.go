// Package transport is a node's place on a mosaik network: its identity, its
// NATS connection, and the sealed messaging that groups and collections run
// on. Most programs only create a Network and hand it to groups.Join or to
// the collections' constructors.
//
// # Starting a network
//
// New with no options starts an embedded NATS server on a free loopback port
// and connects to it; URL tells other nodes where it is, and WithURL connects
// a node to it, or to any existing NATS server or cluster. To deploy without
// a separate NATS, embed a server in every process and cluster them:
// WithListen fixes a server's client address, WithClusterListen its route
// port, and WithRoutes routes it to the others (see the WithRoutes example).
//
// WithIdentity gives a durable node the identity kept in its data directory
// (IdentityFromSeed of storage.DB.NodeKey). WithSecret seals every group of
// the node that names no secret of its own (NewSecret, ParseSecret,
// SecretFromPassphrase). WithNetwork namespaces every subject, so networks
// sharing a server never meet. WithNATSOptions and WithServerOptions pass
// credentials and TLS to the client and the embedded server.
//
// # Lower level
//
// A Scope (Network.Scope) is the one way to send messages of your own: its
// Subscribe, Publish, Request and Call exchange messages sealed for the
// parties that share the scope's id and secret, each with its sender proven.
// The network's own plain messages (status, introductions) are not open to
// callers, since their sender is not proven. Survey asks every node for its
// status and SetStatus adds a section to this node's answer, Faults injects
// drops, delays and partitions for tests, and RaftTransport carries
// hashicorp/raft over a Scope. The package knows nothing of groups.
package transport
