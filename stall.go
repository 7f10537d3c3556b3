package tether

import "time"

// An application that stops reading stops the connection's read loop once
// ReadAhead bytes of messages wait for it (inbox.go). From then on the
// peer's pongs wait in the socket behind its data, unseen: the peer is
// alive and answering, and failing it with "keepalive ping timeout" would
// blame it for the application's stall. So while the read loop is stalled,
// keepalive suspends its timeout, logs "application is not reading" once,
// and when the application reads again the wait for the outstanding pong
// starts over.

// stallBegin records that the read loop stopped on a full inbox.
func (c *conn) stallBegin() {
	c.stalledAt.Store(c.cfg.clock.Now().UnixNano())
}

// stallEnd records that the application took a message (or the connection
// is closing): the read loop goes on, and the pong keepalive waits for gets
// a whole timeout from now.
func (c *conn) stallEnd() {
	since := c.stalledAt.Swap(0)
	now := c.cfg.clock.Now()
	c.ka.mu.Lock()
	warned := c.ka.stallWarned
	c.ka.stallWarned = false
	if c.ka.waiting != nil {
		c.ka.waitFrom = now.UnixNano()
	}
	c.ka.mu.Unlock()
	if !warned {
		return
	}
	stalled := now.Sub(time.Unix(0, since))
	c.log.Info("application is reading again", "stalled_for", stalled)
	c.publish(Event{Kind: EventResume, Time: now, Interval: stalled})
}

// warnStall logs, counts and publishes a stall that keeps keepalive from
// seeing its pong: once per stall, from keepaliveStep, after its lock.
func (c *conn) warnStall(now time.Time) {
	c.stats.rare().readStalls.Add(1)
	n, b := 0, int64(0)
	if q := c.msgs.Load(); q != nil {
		n, b = q.len()
	}
	c.log.Warn("application is not reading", "queued", n, "queued_bytes", b,
		"stalled_for", now.Sub(c.stalledSince()), "timeout", c.cfg.pingTimeout,
		"hint", "keepalive's ping timeout is suspended until the application reads: read the connection, serve it with Go or Serve, or call DiscardMessages")
	c.publish(Event{Kind: EventStall, Time: now})
}

// stalledSince returns when the read loop stopped on a full inbox, or zero.
func (c *conn) stalledSince() time.Time { return unixTime(c.stalledAt.Load()) }

// DiscardMessages makes the connection drop every data message it receives
// from now on (Stats counts them), for connections the application only
// writes to: hub members, feeds. The connection keeps reading, so it
// answers pings, takes pongs and ends when the peer closes; without it, an
// application that never reads stalls the connection once ReadAhead bytes
// wait (see docs/keepalive.md, "If you stop reading"). Messages already
// waiting are dropped too. It is Go with a handle that drops each message,
// so it returns ErrReadConflict while a Read, Reader, Serve or Go is in
// progress, and they return it afterwards. As coder/websocket's CloseRead
// does, it suits a connection whose peer is not expected to send; use Done
// to learn when it ends.
func (c *Conn) DiscardMessages() error {
	return c.Go(func(MessageType, []byte) error {
		c.stats.rare().discarded.Add(1)
		return nil
	}, nil)
}
