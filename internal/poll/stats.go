package poll

// Stats is a snapshot of an engine's load, for metrics and the dashboard.
type Stats struct {
	Loops []LoopStats
}

// LoopStats is one loop's share.
type LoopStats struct {
	Conns       int   // connections registered (or being registered)
	QueuedBytes int64 // bytes waiting in its connections' write queues
	Timers      int   // timers armed
	Tasks       int   // Post calls waiting to run
}

// Stats returns the engine's current load; the figures of different loops
// are taken one after the other, not at one instant.
func (e *Engine) Stats() Stats {
	s := Stats{Loops: make([]LoopStats, len(e.loops))}
	for i, l := range e.loops {
		l.tmu.Lock()
		timers := len(l.heap)
		l.tmu.Unlock()
		s.Loops[i] = LoopStats{
			Conns:       int(l.nconns.Load()),
			QueuedBytes: l.queued.Load(),
			Timers:      timers,
			Tasks:       len(l.slots),
		}
	}
	return s
}

// Conns is the total of the loops' connections.
func (s Stats) Conns() int {
	n := 0
	for _, l := range s.Loops {
		n += l.Conns
	}
	return n
}

// QueuedBytes is the total of the loops' queued bytes.
func (s Stats) QueuedBytes() int64 {
	var n int64
	for _, l := range s.Loops {
		n += l.QueuedBytes
	}
	return n
}
