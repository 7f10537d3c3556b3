package tether

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echoServer starts an httptest server whose handler echoes every message.
func echoServer(t *testing.T, opts *AcceptOptions) (url string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestEchoRoundTrip(t *testing.T) {
	u := echoServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, u+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ MessageType
		p   []byte
	}{
		{Text, []byte("hello")},
		{Binary, []byte{0, 1, 2, 3}},
		{Text, []byte{}},
		{Binary, bytes.Repeat([]byte{0xAB}, 200_000)},
	} {
		if err := c.Write(ctx, tc.typ, tc.p); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != tc.typ || !bytes.Equal(p, tc.p) {
			t.Fatalf("got %v %d bytes, want %v %d bytes", typ, len(p), tc.typ, len(tc.p))
		}
	}
	rtt, err := c.Ping(ctx)
	if err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	if err := c.Close(StatusNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormal || ce.Initiator != "local" || ce.Rcvd == nil {
		t.Fatalf("read after close: %#v", err)
	}
}
