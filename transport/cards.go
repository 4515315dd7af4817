package transport

import (
	"context"
	"fmt"
)

// Cards travel on <network>.card.<peer>: every node answers requests for
// its own card there. A card proves itself, so it travels plain.

func (n *Network) cardSubject(p PeerID) string { return n.Subject("card", p.String()) }

func (n *Network) onCardRequest(m *Msg) {
	if m.ExpectsReply() && !n.answerProbe(m) {
		_ = m.Respond(n.ident.card)
	}
}

// cardOf returns what this node knows of p, asking p for its card if it
// knows nothing yet. It waits at most the RPC timeout.
func (n *Network) cardOf(ctx context.Context, p PeerID) (*peerEntry, error) {
	if e := n.cards.get(p); e != nil {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.rpcTO)
	defer cancel()
	b, err := n.request(ctx, nil, n.cardSubject(p), p, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%w: card of %s: %v", ErrUnreachable, p.Short(), err)
	}
	return n.cards.learn(p, b)
}

// maxCardFetches bounds the card requests in flight for senders this node
// heard from without knowing them.
const maxCardFetches = 16

// fetchCard asks p for its card in the background, so that p's next frame
// opens. At most maxCardFetches run at once, one per peer; more are
// dropped (p's next frame asks again).
func (n *Network) fetchCard(p PeerID) {
	n.mu.Lock()
	if n.closed || n.fetching[p] || len(n.fetching) >= maxCardFetches {
		n.mu.Unlock()
		return
	}
	n.fetching[p] = true
	n.bg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.bg.Done()
		_, err := n.cardOf(context.Background(), p)
		if err != nil {
			n.log.Debug("transport: card request failed", "peer", p.Short(), "err", err)
		}
		n.mu.Lock()
		delete(n.fetching, p)
		n.mu.Unlock()
	}()
}
