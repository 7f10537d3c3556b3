package tether

import (
	"context"
	"log/slog"
	"sync"
)

// logRecorder is a slog.Handler that keeps every record, for tests that
// check what a connection or the registry logged.
type logRecorder struct {
	mu    *sync.Mutex
	recs  *[]logRec
	attrs []slog.Attr
}

// logRec is one record: its level, message and attributes by key.
type logRec struct {
	Level slog.Level
	Msg   string
	Attrs map[string]slog.Value
}

func newLogRecorder() (*slog.Logger, *logRecorder) {
	h := &logRecorder{mu: &sync.Mutex{}, recs: &[]logRec{}}
	return slog.New(h), h
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{Level: r.Level, Msg: r.Message, Attrs: map[string]slog.Value{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{mu: h.mu, recs: h.recs, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// with returns the records whose message is msg.
func (h *logRecorder) with(msg string) []logRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRec
	for _, r := range *h.recs {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}
