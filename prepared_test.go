package tether

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetherws/tether/internal/wire"
)

// TestPreparedMessage sends one prepared message to connections with
// different negotiated windows and takeover modes, between ordinary
// messages, and checks every receiver gets every message intact: the shared
// compressed form must not break context takeover.
func TestPreparedMessage(t *testing.T) {
	pm, err := NewPreparedMessage(Text, bytes.Repeat([]byte(`{"room":"lobby","text":"hello everyone"}`), 40))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []wire.DeflateParams{
		{},
		{ServerMaxWindowBits: 9, ClientMaxWindowBits: 9},
		{ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		{ServerMaxWindowBits: 12},
	} {
		cc, sc := deflatePair(t, p, 1<<20)
		for i, msg := range [][]byte{[]byte(`{"room":"lobby","text":"before"}`), pm.Data(), bytes.Repeat([]byte("after "), 100)} {
			if i == 1 {
				err = sc.WritePrepared(ctx, pm)
			} else {
				err = sc.Write(ctx, Text, msg)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, got, err := cc.Read(ctx); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%s message %d: %d bytes, %v", p, i, len(got), err)
			}
		}
	}
	pm.mu.Lock()
	forms := len(pm.forms)
	pm.mu.Unlock()
	if forms != 3 { // window bits 15, 9 and 12: one compression each
		t.Fatalf("compressed %d times, want once per window size (3)", forms)
	}
}
