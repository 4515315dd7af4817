package groups

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mosaik-go/mosaik/transport"
)

// Tickets makes a group admit only members that hold a ticket from an
// issuer: a JWT signed with Ed25519 (EdDSA) by the issuer's key, whose
// subject is the member's PeerID in hex and which expires. A member shows its
// ticket in its announcements; the leader adds and promotes only members
// whose ticket holds, and removes a member whose ticket expired. The
// issuer's public key is part of the group id: members with other ticket
// rules never meet this group.
type Tickets struct {
	// Issuer is the public key tickets must be signed with.
	Issuer ed25519.PublicKey
	// Audience, if set, must be among a ticket's audiences, so that one
	// issuer can give tickets for some groups and not others.
	Audience string
}

// IssueTicket signs a ticket admitting peer until expires, for the given
// audiences (none: any group that trusts the issuer). It is what an
// operator's tool runs; the ticket is then given to the node as
// Config.Ticket.
func IssueTicket(issuer ed25519.PrivateKey, peer transport.PeerID, expires time.Time, audience ...string) (string, error) {
	claims := jwt.RegisteredClaims{
		Subject:   peer.String(),
		ExpiresAt: jwt.NewNumericDate(expires),
		IssuedAt:  jwt.NewNumericDate(time.Now()),
	}
	if len(audience) > 0 {
		claims.Audience = audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(issuer)
}

// maxTicketSize bounds what is parsed: a ticket is a few hundred bytes.
const maxTicketSize = 4096

var errNoTicket = errors.New("groups: no ticket")

// check verifies ticket as peer's and returns when it expires.
func (t *Tickets) check(ticket string, peer transport.PeerID) (time.Time, error) {
	if ticket == "" {
		return time.Time{}, errNoTicket
	}
	if len(ticket) > maxTicketSize {
		return time.Time{}, fmt.Errorf("groups: ticket of %d bytes, limit %d", len(ticket), maxTicketSize)
	}
	var claims jwt.RegisteredClaims
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithSubject(peer.String()),
	}
	if t.Audience != "" {
		opts = append(opts, jwt.WithAudience(t.Audience))
	}
	_, err := jwt.ParseWithClaims(ticket, &claims, func(*jwt.Token) (any, error) { return t.Issuer, nil }, opts...)
	if err != nil {
		return time.Time{}, fmt.Errorf("groups: ticket of %s: %w", peer.Short(), err)
	}
	return claims.ExpiresAt.Time, nil
}

func (t *Tickets) validate() error {
	if t == nil {
		return nil
	}
	if len(t.Issuer) != ed25519.PublicKeySize {
		return fmt.Errorf("groups: Config.Tickets.Issuer is %d bytes, want an Ed25519 public key (%d)", len(t.Issuer), ed25519.PublicKeySize)
	}
	return nil
}

// idBytes is what the ticket rules add to the group id.
func (t *Tickets) idBytes() []byte {
	if t == nil {
		return nil
	}
	b := slices.Clone([]byte(t.Issuer))
	return appendString(b, t.Audience)
}
