package natsbroker

import (
	"testing"
	"time"
)

// TestRoomStatesForgotten: the per-room publishing state of a room gone quiet
// is dropped on the next sweep, unless someone holds it; a recent room stays.
func TestRoomStatesForgotten(t *testing.T) {
	b := New(Options{JetStream: true, HistoryAge: time.Hour})
	if got := b.roomKeep(); got != 2*time.Hour {
		t.Fatalf("roomKeep = %v, want 2h (twice the history age)", got)
	}
	quiet, held, recent := b.room("quiet"), b.room("held"), b.room("recent")
	b.done(quiet)
	b.done(recent)
	past := time.Now().Add(-3 * time.Hour)
	b.roomMu.Lock()
	quiet.lastUsed, held.lastUsed = past, past
	b.roomSwept = past // a sweep is due
	b.roomMu.Unlock()

	b.done(b.room("another"))

	b.roomMu.Lock()
	defer b.roomMu.Unlock()
	if _, ok := b.rooms["quiet"]; ok {
		t.Error("the quiet room's state was kept")
	}
	for _, name := range []string{"held", "recent", "another"} {
		if _, ok := b.rooms[name]; !ok {
			t.Errorf("room %q was forgotten", name)
		}
	}
	if held.users != 1 {
		t.Errorf("held room users = %d, want 1", held.users)
	}
}

func TestRoomKeepUnlimitedAge(t *testing.T) {
	b := New(Options{JetStream: true, HistoryAge: -1})
	if got := b.roomKeep(); got != 24*time.Hour {
		t.Fatalf("roomKeep with no age limit = %v, want 24h", got)
	}
	b = New(Options{JetStream: true, HistoryAge: time.Minute})
	if got := b.roomKeep(); got != time.Hour {
		t.Fatalf("roomKeep with a 1 min age = %v, want the 1 h floor", got)
	}
}
