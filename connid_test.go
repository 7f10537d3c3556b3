package tether

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/tetherws/tether/internal/wire"
)

// TestConnIDs: whatever ConnOptions.ID gives (nothing, a UUID, a UUID in
// capitals, any other text) comes back unchanged from ID, Stats, Info and
// the registry, which finds the connection by it; only canonical UUIDs are
// kept as 16 bytes.
func TestConnIDs(t *testing.T) {
	canonical := uuid.Must(uuid.NewV7()).String()
	upper := "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"
	for _, given := range []string{"", canonical, upper, "req-42", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5", ""} {
		reg := NewRegistry()
		a, b := socketPair(t)
		opts := ConnOptions{PingInterval: -1, Registry: reg, Logger: discard, ID: given}
		c := newConn(b, nil, wire.Server, opts.config(), "", "/")
		id := c.ID()
		switch {
		case given == "":
			if _, err := uuid.Parse(id); err != nil || c.id.name != nil {
				t.Errorf("generated ID %q: not a UUID kept as bytes", id)
			}
		case id != given:
			t.Errorf("ID %q, given %q", id, given)
		}
		if (given == canonical) != (c.id.name == nil && given != "") {
			t.Errorf("ID %q kept as bytes: %v", given, c.id.name == nil)
		}
		if c.Stats().ID != id || c.Info().ID != id {
			t.Errorf("Stats and Info say %q and %q, ID %q", c.Stats().ID, c.Info().ID, id)
		}
		if ci, ok := reg.Get(id); !ok || ci.ID != id {
			t.Errorf("registry Get(%q): %q, %v", id, ci.ID, ok)
		}
		var ids []string
		reg.Range(func(ci ConnInfo) bool { ids = append(ids, ci.ID); return true })
		if !slices.Equal(ids, []string{id}) {
			t.Errorf("registry lists %q, want [%q]", ids, id)
		}
		c.CloseNow()
		a.Close()
		if _, ok := reg.Get(id); ok || reg.Len() != 0 {
			t.Errorf("%q still registered after close", id)
		}
	}
}

// TestConnIDOrder: IDs order as their text does, so connections opened in
// the same instant list in the order of their UUIDv7s.
func TestConnIDOrder(t *testing.T) {
	ids := []string{"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "A-name", "z"}
	for i := range ids {
		for j := range ids {
			a, b := parseConnID(ids[i]), parseConnID(ids[j])
			if got, want := a.compare(b), cmpInt(i, j); got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", ids[i], ids[j], got, want)
			}
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// funcClock is a Clock of a type that cannot be compared.
type funcClock struct{ now func() time.Time }

func (c funcClock) Now() time.Time { return c.now() }
func (c funcClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// TestSharedConfig: connections opened with the same settings share one
// connConfig, others get their own; a Relay or a Clock that cannot be
// compared makes a copy of the connection's own; and a config no
// connection holds leaves the table.
func TestSharedConfig(t *testing.T) {
	open := func(o ConnOptions) *Conn {
		a, b := socketPair(t)
		t.Cleanup(func() { a.Close() })
		o.PingInterval, o.Registry, o.Logger = -1, NoRegistry, discard
		c := newConn(b, nil, wire.Server, o.config(), "", "/")
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	a, b := open(ConnOptions{ReadLimit: 12345}), open(ConnOptions{ReadLimit: 12345})
	if a.cfg != b.cfg {
		t.Error("two connections with the same settings do not share their config")
	}
	if c := open(ConnOptions{ReadLimit: 54321}); c.cfg == a.cfg || c.cfg.readLimit != 54321 {
		t.Error("a connection with other settings shares a config that is not its own")
	}
	relay := func(ControlOp, []byte) {}
	r1, r2 := open(ConnOptions{Relay: relay}), open(ConnOptions{Relay: relay})
	if r1.cfg == r2.cfg || r1.cfg.relay == nil {
		t.Error("connections with a relay share a config")
	}
	f1, f2 := open(ConnOptions{Clock: funcClock{time.Now}}), open(ConnOptions{Clock: funcClock{time.Now}})
	if f1.cfg == f2.cfg || f1.cfg.clock == nil {
		t.Error("connections with a clock that cannot be compared share a config")
	}

	// A config of its own, dropped with its connection.
	key := *a.cfg
	key.readLimit = 999
	func() {
		x, y := socketPair(t)
		defer x.Close()
		o := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard, ReadLimit: 999}
		c := newConn(y, nil, wire.Server, o.config(), "", "/")
		sharedConfigs.Lock()
		_, ok := sharedConfigs.m[key]
		sharedConfigs.Unlock()
		if !ok {
			t.Error("a connection's config is not in the table")
		}
		c.CloseNow()
	}()
	eventually(t, "the dropped connection's config leaves the table", func() bool {
		runtime.GC()
		sharedConfigs.Lock()
		defer sharedConfigs.Unlock()
		_, ok := sharedConfigs.m[key]
		return !ok
	})
}
