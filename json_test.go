package tether

import (
	"context"
	"strings"
	"testing"
)

type jsonMsg struct {
	Kind string   `json:"kind"`
	Seq  int      `json:"seq"`
	Tags []string `json:"tags,omitempty"`
}

// TestJSONRoundTrip: WriteJSON sends one text message that ReadJSON
// decodes; JSON in a binary message is read too; a message that is not
// JSON is reported and the next one is read; a value that cannot be
// encoded sends nothing.
func TestJSONRoundTrip(t *testing.T) {
	ctx := context.Background()
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	c, s := pair(t, opts, opts)
	want := jsonMsg{Kind: "hello", Seq: 7, Tags: []string{"a", "b"}}
	if err := WriteJSON(ctx, c, want); err != nil {
		t.Fatal(err)
	}
	typ, p, err := s.Read(ctx)
	if err != nil || typ != Text || string(p) != `{"kind":"hello","seq":7,"tags":["a","b"]}` {
		t.Fatalf("WriteJSON sent %v %q %v", typ, p, err)
	}
	s.Write(ctx, Binary, []byte(`{"kind":"bin","seq":1}`))
	s.Write(ctx, Text, []byte(`not json`))
	s.Write(ctx, Text, []byte(`{"kind":"after","seq":2}`))
	var got jsonMsg
	if err := ReadJSON(ctx, c, &got); err != nil || got.Kind != "bin" || got.Seq != 1 {
		t.Fatalf("ReadJSON of a binary message: %+v %v", got, err)
	}
	if err := ReadJSON(ctx, c, &got); err == nil || !strings.Contains(err.Error(), "ReadJSON") {
		t.Fatalf("ReadJSON of %q: %v, want an error", "not json", err)
	}
	got = jsonMsg{}
	if err := ReadJSON(ctx, c, &got); err != nil || got.Kind != "after" {
		t.Fatalf("ReadJSON after a bad message: %+v %v", got, err)
	}
	if err := WriteJSON(ctx, c, make(chan int)); err == nil {
		t.Fatal("WriteJSON of a channel succeeded")
	}
	if n := c.Stats().MessagesOut; n != 1 {
		t.Fatalf("%d messages sent, want 1: a failed encoding must send nothing", n)
	}
}
