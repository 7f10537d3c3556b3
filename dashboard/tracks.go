package dashboard

import (
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// trackMap holds the tracks of live connections by ID. A UUID, the IDs
// Tether makes, is kept as its 16 bytes: the registry formats an ID anew
// for each event and snapshot, and keeping one such string per connection
// would cost every connection 48 bytes. Other IDs are kept as text.
type trackMap struct {
	ids   map[uuid.UUID]*track
	names map[string]*track
}

// trackKey is an ID as trackMap keeps it.
type trackKey struct {
	id   uuid.UUID
	name string // when the ID is not a UUID in canonical form
}

func keyOf(id string) trackKey {
	if len(id) == 36 && strings.IndexFunc(id, unicode.IsUpper) < 0 {
		if u, err := uuid.Parse(id); err == nil {
			return trackKey{id: u}
		}
	}
	return trackKey{name: id}
}

func (k trackKey) String() string {
	if k.name != "" {
		return k.name
	}
	return k.id.String()
}

func (m *trackMap) get(id string) *track {
	k := keyOf(id)
	if k.name != "" {
		return m.names[k.name]
	}
	return m.ids[k.id]
}

func (m *trackMap) put(id string, t *track) {
	k := keyOf(id)
	if k.name != "" {
		if m.names == nil {
			m.names = map[string]*track{}
		}
		m.names[k.name] = t
		return
	}
	if m.ids == nil {
		m.ids = map[uuid.UUID]*track{}
	}
	m.ids[k.id] = t
}

func (m *trackMap) remove(id string) {
	k := keyOf(id)
	if k.name != "" {
		delete(m.names, k.name)
		return
	}
	delete(m.ids, k.id)
}

// each calls f with every track, which f may remove.
func (m *trackMap) each(f func(trackKey, *track)) {
	for u, t := range m.ids {
		f(trackKey{id: u}, t)
	}
	for n, t := range m.names {
		f(trackKey{name: n}, t)
	}
}

func (m *trackMap) len() int { return len(m.ids) + len(m.names) }
