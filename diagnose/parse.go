package diagnose

import (
	"bytes"
	"time"
)

// parser turns lines into records. It is chosen per line, so one file may
// mix Tether's slog records (text or JSON) with python-websockets' lines in
// any of the common logging formats.
type parser struct {
	in interner
}

func newParser() *parser { return &parser{in: interner{}} }

// parse reads one line (without its newline). It returns kindNone for a line
// of no known source.
func (p *parser) parse(line []byte) record {
	line = bytes.TrimRight(line, "\r")
	trimmed := bytes.TrimLeft(line, " \t")
	if len(trimmed) == 0 {
		return record{}
	}
	if trimmed[0] == '{' {
		if r, ok := p.parseJSON(trimmed); ok {
			return r
		}
		return record{}
	}
	if i := logfmtStart(trimmed); i >= 0 {
		if r, ok := p.parseLogfmt(trimmed[i:]); ok {
			return r
		}
	}
	return p.parsePython(trimmed)
}

// logfmtStart finds where slog's text records start ("time=" or "level="),
// possibly after a prefix such as a supervisor's; -1 when the line is not
// one.
func logfmtStart(b []byte) int {
	if bytes.HasPrefix(b, []byte("time=")) || bytes.HasPrefix(b, []byte("level=")) {
		return 0
	}
	if bytes.IndexByte(b, '=') < 0 {
		return -1
	}
	for _, key := range [][]byte{[]byte(" time="), []byte(" level=")} {
		if i := bytes.Index(b, key); i >= 0 && bytes.Contains(b[i:], []byte(" msg=")) {
			return i + 1
		}
	}
	return -1
}

// parseTime reads a timestamp at the start of b: RFC 3339 ("2025-06-07T05:
// 31:37.123456Z", "+02:00"), or Python's asctime ("2025-06-07 05:31:37,123")
// and Home Assistant's ("2025-06-07 05:31:37.123"). Times without a zone are
// taken as UTC. It returns the Unix nanoseconds and the bytes used.
func parseTime(b []byte) (int64, int, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' {
		return 0, 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, 0, false
	}
	n := 19
	var nanos int64
	if n < len(b) && (b[n] == '.' || b[n] == ',') {
		j := n + 1
		scale := int64(100000000)
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			nanos += int64(b[j]-'0') * scale
			scale /= 10
			j++
		}
		if j == n+1 {
			return 0, 0, false
		}
		n = j
	}
	var offset int64
	if n < len(b) {
		switch b[n] {
		case 'Z':
			n++
		case '+', '-':
			if n+6 <= len(b) && b[n+3] == ':' {
				oh, okh := digits(b[n+1 : n+3])
				om, okm := digits(b[n+4 : n+6])
				if okh && okm {
					offset = int64(oh*3600+om*60) * 1e9
					if b[n] == '-' {
						offset = -offset
					}
					n += 6
				}
			}
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).UnixNano()
	return t + nanos - offset, n, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// levelWord reports whether b is a logging level name.
func levelWord(b []byte) bool {
	switch string(b) {
	case "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET":
		return true
	}
	return false
}
