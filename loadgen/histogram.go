package loadgen

import (
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram holds latencies in nanoseconds, from 100 ns to 100 s, to three
// significant digits (an HDR histogram: every recorded value is kept to
// within 0.1 %, whatever its magnitude, in a fixed 230 KiB).
type Histogram struct {
	h *hdrhistogram.Histogram
}

const (
	histLowest  = 100
	histHighest = int64(100 * time.Second)
	histDigits  = 3
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// Record adds one latency; values out of range are clamped.
func (h *Histogram) Record(d time.Duration) {
	v := min(max(int64(d), histLowest), histHighest)
	h.h.RecordValue(v)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o != nil && o.h != nil {
		h.h.Merge(o.h)
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Quantile returns the value at quantile q (0-1), 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtPercentile(q * 100))
}

// Max returns the largest value, 0 when empty.
func (h *Histogram) Max() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.h.Max())
}

// Mean returns the mean value, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.h.Mean())
}

// MarshalJSON encodes the histogram in HdrHistogram's compressed V2 form,
// as a base64 string, so split runs can merge exactly.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, err
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	d, err := hdrhistogram.Decode(b)
	if err != nil {
		return err
	}
	h.h = d
	return nil
}

// recorder spreads concurrent recording over a few locked shards.
type recorder struct {
	shards [16]struct {
		mu sync.Mutex
		h  *Histogram
		_  [40]byte // keep shards on separate cache lines
	}
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		r.shards[i].h = NewHistogram()
	}
	return r
}

func (r *recorder) record(shard int, d time.Duration) {
	s := &r.shards[shard&(len(r.shards)-1)]
	s.mu.Lock()
	s.h.Record(d)
	s.mu.Unlock()
}

func (r *recorder) merged() *Histogram {
	out := NewHistogram()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}
