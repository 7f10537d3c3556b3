package tether

// A connection reads ahead of its application: while the application is
// busy with one message, the read loop has already queued the next ones,
// and may meet a frame that ends the connection (a protocol error, a close
// frame, a message too big or badly compressed). Acting on it at once
// would fail the connection under messages the application has not seen,
// and its replies to them (an echo, an acknowledgement) would be refused.
// A strict endpoint behaves as if it handled frames one at a time
// (Autobahn families 3, 4 and 5 test exactly this). So when messages
// received before such an end still wait in the queue, the read loop holds
// the end back until the application has taken them all and asks for more: then the end takes effect, the close frame
// follows whatever the application wrote in reply, and its Read returns
// the *CloseError. The hold is bounded by CloseTimeout, so a peer that
// sends garbage behind good messages to an application that never reads is
// still cut; no frame is read meanwhile.
//
// Serve and Go need none of this: on a reader goroutine their handle runs
// on the read loop before the next frame is read; under the event engine
// the end waits for every message received before it to be handled
// (endReading).

// inOrder waits, on the read loop, before an end it has found takes
// effect: until the application has taken every queued message and come
// back for more, the connection starts closing from our side, it ends, or
// CloseTimeout passes.
func (c *conn) inOrder() { c.waitOrder(c.orderHold()) }

// orderHold is inOrder's decision, taken when the end is found: the queue
// and the hold to wait for, nil when there is none. The event engine takes
// it on the loop, where the end is found, and waits on the goroutine that
// ends the connection: by the time that goroutine runs, the application may
// have taken the last message without having written its reply yet.
func (c *conn) orderHold() (*inbox, <-chan struct{}) {
	q := c.msgs.Load()
	if q == nil || c.srv.Load() != nil {
		return nil, nil
	}
	select {
	case <-c.closingChan():
		return nil, nil // our close frame is out: the application is not waiting for messages
	default:
	}
	return q, q.holdEnd()
}

// waitOrder waits for a hold from orderHold, bounded by CloseTimeout.
func (c *conn) waitOrder(q *inbox, hold <-chan struct{}) {
	if hold == nil {
		return
	}
	t := c.cfg.clock.AfterFunc(c.cfg.closeTimeout, q.release)
	defer t.Stop()
	select {
	case <-hold:
	case <-c.closingChan():
	case <-c.doneChan():
	}
}

// handled waits for a handle call in progress to return.
func (c *conn) handled() {
	if c.srv.Load() != nil {
		c.handleMu.Lock()
		//lint:ignore SA2001 the lock is the wait for handle to return
		c.handleMu.Unlock()
	}
}
