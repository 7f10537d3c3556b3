package loadgen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestHistogramRoundTrip(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Count() != 1000 {
		t.Fatalf("count %d after a round trip", back.Count())
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Microsecond, 0.99: 990 * time.Microsecond, 1: time.Millisecond} {
		got := back.Quantile(q)
		if d := got - want; d < -want/500 || d > want/500 {
			t.Errorf("q%v = %v, want %v within 0.2%%", q, got, want)
		}
	}
	h.Merge(&back)
	if h.Count() != 2000 {
		t.Errorf("merged count %d", h.Count())
	}
	h.Record(time.Hour) // clamped, not dropped
	if h.Count() != 2001 || h.Max() < 99*time.Second {
		t.Errorf("an out-of-range value: count %d, max %v", h.Count(), h.Max())
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{0, 1, 24, 1024, 16 << 10} {
		p := Payload(n)
		if len(p) != n || !utf8.Valid(p) {
			t.Errorf("Payload(%d): %d bytes, valid UTF-8 %v", n, len(p), utf8.Valid(p))
		}
	}
	if strings.Count(string(Payload(4096)), string(Payload(64))) > 1 {
		t.Errorf("the payload repeats one block")
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []Config{
		{URLs: []string{"http//x"}},
		{URLs: []string{"ftp://x/"}},
		{URLs: []string{"ws://x/"}, Mode: "flood"},
		{URLs: []string{"ws://x/"}, Mode: Broadcast, Size: 10},
		{URLs: []string{"ws://x/"}, Rate: -1},
	} {
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%+v passed", c)
		}
	}
	tg, err := parseTarget("ws://[::1]/echo?x=1")
	if err != nil || tg.addr != "[::1]:80" || tg.request != "/echo?x=1" {
		t.Errorf("target %+v, %v", tg, err)
	}
	if (Config{Conns: 100, Mode: Broadcast}).Files() != 101+fileMargin {
		t.Errorf("broadcast files miss the publisher")
	}
}

func TestMergeSumsAndKeepsWindow(t *testing.T) {
	a := &Result{Procs: 1, Conns: 2, Connected: 2, Messages: 10, Bytes: 100, WindowS: 1, Latency: NewHistogram(), Errors: map[string]int64{"close 1006": 1}}
	b := &Result{Procs: 1, Conns: 3, Connected: 2, Messages: 5, Bytes: 50, WindowS: 1.2, Latency: NewHistogram(), Errors: map[string]int64{"close 1006": 2, "timeout": 1}}
	a.Latency.Record(time.Millisecond)
	b.Latency.Record(2 * time.Millisecond)
	m := Merge(a, b)
	if m.Procs != 2 || m.Conns != 5 || m.Connected != 4 || m.Messages != 15 || m.Bytes != 150 || m.WindowS != 1.2 {
		t.Errorf("merged %+v", m)
	}
	if m.Errors["close 1006"] != 3 || m.Errors["timeout"] != 1 || m.ErrorCount() != 4 {
		t.Errorf("errors %v", m.Errors)
	}
	if m.LatencyUS.Count != 2 || m.LatencyUS.Max < 1990 {
		t.Errorf("latency %+v", m.LatencyUS)
	}
	if got := formatErrors(m.Errors); got != "close 1006: 3, timeout: 1" {
		t.Errorf("formatErrors = %q", got)
	}
	if grouped(1234567) != "1,234,567" || grouped(12) != "12" {
		t.Errorf("grouped: %s %s", grouped(1234567), grouped(12))
	}
}
