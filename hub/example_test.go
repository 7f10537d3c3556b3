package hub_test

import (
	"net/http"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/hub"
)

func Example() {
	h := hub.New(&hub.Options{Queue: 256, Policy: hub.CloseSlow})
	defer h.Close()
	http.HandleFunc("/chat", func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		h.Join("lobby", c) // it leaves every room when it ends
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			h.Broadcast("lobby", typ, msg) // encoded once, queued for each member
		}
	})
}
