package tether

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandshakeErrorBody: a refused handshake carries the first line of
// the server's body, which often says why.
func TestHandshakeErrorBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "\norigin http://evil.example not allowed\nmore", http.StatusForbidden)
	}))
	defer srv.Close()
	_, _, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{ConnOptions: ConnOptions{Registry: NoRegistry}})
	var he *HandshakeError
	if !errors.As(err, &he) || he.Body != "origin http://evil.example not allowed" || !strings.Contains(err.Error(), "server said: origin http://evil.example not allowed") {
		t.Fatalf("err %v (body %q)", err, he.Body)
	}
}
