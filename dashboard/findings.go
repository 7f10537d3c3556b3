package dashboard

import (
	"net/http"
	"sync"
	"time"

	"github.com/tetherws/tether"
)

// Registry.Findings looks at every live connection, so the dashboard works
// it out at most once a tick, and only while someone looks: at the ticks
// while a page's feed is open, and when the API, a polling page or a scrape
// asks and the last result is older than a tick.

// findingsCache is the last result of Registry.Findings and when it came.
type findingsCache struct {
	mu   sync.Mutex
	at   time.Time
	list []tether.Finding
}

// currentFindings returns the registry's findings, at most a tick old. The
// list is shared: callers must not change it.
func (s *state) currentFindings() []tether.Finding {
	fc := &s.findings
	fc.mu.Lock()
	fresh := !fc.at.IsZero() && time.Since(fc.at) < tickEvery
	list := fc.list
	fc.mu.Unlock()
	if fresh {
		return list
	}
	return s.refreshFindings()
}

// refreshFindings works the findings out anew and keeps them.
func (s *state) refreshFindings() []tether.Finding {
	list := s.reg.Findings() // outside the lock: it scans the registry
	if list == nil {
		list = []tether.Finding{}
	}
	fc := &s.findings
	fc.mu.Lock()
	fc.at, fc.list = time.Now(), list
	fc.mu.Unlock()
	return list
}

// findingsJSON is /api/findings: an object, so fields can join the list
// later without breaking clients.
type findingsJSON struct {
	Time     time.Time        `json:"time"`
	Findings []tether.Finding `json:"findings"`
}

func (h *Handler) getFindings(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, findingsJSON{Time: time.Now().UTC(), Findings: h.state.currentFindings()})
}
