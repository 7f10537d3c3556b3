package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

// A feed: members only receive. The handler joins the connection to a room,
// tells it to discard what its peer sends (so it goes on answering pings and
// sees the peer's close, instead of stalling once its read-ahead is full),
// and returns: the hub writes to the connection, which leaves its rooms when
// it ends.
func ExampleHub_Join() {
	h := hub.New(&hub.Options{Queue: 64})
	defer h.Close()
	joined := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := h.Join("news", c); err != nil {
			c.CloseNow()
			return
		}
		c.DiscardMessages() // its peer has nothing to say
		joined <- struct{}{}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := tether.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/news", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-joined
	n, _ := h.Broadcast("news", tether.Text, []byte("extra! extra!"))
	_, msg, _ := c.Read(ctx)
	fmt.Println(n, "member got:", string(msg))
	c.Close(tether.StatusNormal, "")
	// Output: 1 member got: extra! extra!
}
