package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/tetherws/tether"
)

const (
	// feedPing is the keepalive interval of the page's feed: a closed laptop
	// lid must not leave a feed behind for long.
	feedPing = 15 * time.Second
	// feedWrite bounds one update; a page that cannot take it in that time
	// is dropped and falls back to polling until it reconnects.
	feedWrite = 5 * time.Second
	// feedClose bounds the close handshake when the dashboard shuts down.
	feedClose = 2 * time.Second
)

// feed is the page's WebSocket: a hello with the whole state, then an
// update at every tick. It is a Tether connection like any other, kept out
// of the registry so the dashboard does not list itself.
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "dashboard closed", http.StatusServiceUnavailable)
		return
	}
	h.feeds.Add(1)
	h.mu.Unlock()
	defer h.feeds.Done()

	c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
		Registry:     tether.NoRegistry,
		PingInterval: feedPing,
		CloseTimeout: feedClose,
		Logger:       h.logger,
	}})
	if err != nil {
		return // Accept answered the request
	}
	// The page sends nothing: drop whatever comes, and the connection still
	// answers pings and notices the page's close, without a goroutine here.
	c.DiscardMessages()
	defer c.CloseNow()

	h.state.watchers.Add(1) // findings are worked out at each tick meanwhile
	defer h.state.watchers.Add(-1)
	f := filterFrom(r.URL.Query())
	msg, cur := h.message("hello", f, cursor{})
	for {
		if err := send(c, msg); err != nil {
			return
		}
		select {
		case <-h.state.ticked():
		case <-c.Done():
			return
		case <-h.done:
			c.Close(tether.StatusGoingAway, "dashboard closing")
			return
		}
		msg, cur = h.message("update", f, cur)
	}
}

func send(c *tether.Conn, msg stateMsg) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), feedWrite)
	defer cancel()
	return c.Write(ctx, tether.Text, b)
}
