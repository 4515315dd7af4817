package transport

// A Slot is a place for state of type T that an upper layer keeps on each
// Network: what a node's groups answer in status, the bounds its inspect
// servers share. The state lives and dies with its network, so nothing
// process-wide maps networks to it: two networks of one process never share
// it, and a closed network drops it. Declare a Slot once, as a package
// variable; its zero value is not usable. It is safe for concurrent use.
type Slot[T any] struct {
	newValue func(*Network) *T
}

// NewSlot declares a slot whose value newValue makes, once per network,
// the first time Get asks for it.
func NewSlot[T any](newValue func(*Network) *T) *Slot[T] {
	return &Slot[T]{newValue: newValue}
}

// Get returns n's value in the slot, made on first use. newValue runs under n's
// lock of slots, so it runs once per network, and must not call Get on n.
// After n closed, Get makes a value n does not keep (each call another), so
// that a late caller still works on its own.
func (s *Slot[T]) Get(n *Network) *T {
	n.slotMu.Lock()
	defer n.slotMu.Unlock()
	if v, ok := n.slots[s]; ok {
		return v.(*T)
	}
	v := s.newValue(n)
	if !n.slotsDropped {
		if n.slots == nil {
			n.slots = map[any]any{}
		}
		n.slots[s] = v
	}
	return v
}

// dropSlots forgets every slot's value of n; Close calls it.
func (n *Network) dropSlots() {
	n.slotMu.Lock()
	defer n.slotMu.Unlock()
	n.slots, n.slotsDropped = nil, true
}
