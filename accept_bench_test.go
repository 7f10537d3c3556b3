package tether

import (
	"bufio"
	"net"
	"net/http"
	"testing"
)

// fakeHijacker is a ResponseWriter that hands over one end of a net.Pipe.
type fakeHijacker struct {
	http.ResponseWriter
	h  http.Header
	nc net.Conn
}

func (w *fakeHijacker) Header() http.Header { return w.h }
func (w *fakeHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.nc, nil, nil
}

// BenchmarkAccept measures what Accept costs a server per connection, from
// the checked request to the open connection and its end (net.Pipe's own
// allocations included).
func BenchmarkAccept(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://example.com/echo", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	opts := &AcceptOptions{ConnOptions: ConnOptions{PingInterval: -1, Logger: discard, CompressionMode: CompressionDisabled}}
	b.ReportAllocs()
	for b.Loop() {
		a, p := net.Pipe()
		go func() { // the client's side: read the 101 response
			buf := make([]byte, 512)
			p.Read(buf)
		}()
		c, err := Accept(&fakeHijacker{h: http.Header{}, nc: a}, req, opts)
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		c.CloseNow()
	}
}
