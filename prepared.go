package tether

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetherws/tether/internal/bufpool"
	"github.com/tetherws/tether/internal/deflate"
	"github.com/tetherws/tether/internal/wire"
)

// PreparedMessage is a message encoded once for many connections, as a
// broadcast needs: it is compressed at most once per window size that the
// receiving connections negotiated, however many connections it goes to.
// It is safe for concurrent use.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu    sync.Mutex
	forms map[int][]byte // compressed payload by window bits
}

// NewPreparedMessage prepares data to be sent as a message of type typ. The
// data must not be modified afterwards.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != Text && typ != Binary {
		return nil, fmt.Errorf("tether: invalid message type %d", typ)
	}
	return &PreparedMessage{typ: typ, data: data, forms: map[int][]byte{}}, nil
}

// Type returns the message type.
func (pm *PreparedMessage) Type() MessageType { return pm.typ }

// Data returns the message as given.
func (pm *PreparedMessage) Data() []byte { return pm.data }

// compressed returns the message compressed without history for a window
// of 2^bits, computing it on first use.
func (pm *PreparedMessage) compressed(bits int) ([]byte, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if f, ok := pm.forms[bits]; ok {
		return f, nil
	}
	buf := bufpool.Get(len(pm.data)/2 + 64)
	defer bufpool.Put(buf)
	if err := deflate.CompressOnce(buf, pm.data, bits, 0); err != nil {
		return nil, err
	}
	f := append([]byte(nil), *buf...)
	pm.forms[bits] = f
	return f, nil
}

// WritePrepared sends a prepared message. A connection that compresses gets
// the shared compressed form (valid whatever its context takeover, since it
// refers to no earlier message); others get the plain bytes.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	if err := c.acquire(ctx, &c.msgSem); err != nil {
		return err
	}
	defer c.msgSem.release()
	payload, rsv := pm.data, uint8(0)
	if c.deflate != nil && len(pm.data) >= c.cfg.threshold {
		f, err := pm.compressed(c.deflate.comp.Bits)
		if err != nil {
			return err
		}
		payload, rsv = f, wire.Rsv1
		c.deflate.comp.Sent(pm.data) // keep the history in step with the peer's
	}
	if err := c.writeMessage(ctx, wire.Opcode(pm.typ), rsv, payload); err != nil {
		return err
	}
	c.stats.messagesOut.Add(1)
	c.stats.bytesOut.Add(int64(len(pm.data)))
	return nil
}
