package diagnose

import (
	"bufio"
	"errors"
	"io"
	"math"
	"sort"
	"strings"
)

// Analyzer reads logs line by line and keeps, per connection or per group of
// unlabeled lines, only what the analysis needs: one small record per
// keepalive ping. Feed it one or more logs, then call Report.
type Analyzer struct {
	p        *parser
	file     int
	files    []fileStart // one per Feed
	line     int32
	counts   Counts
	ctxIndex map[ctxKey]int32
	ctxs     []*context
	scopes   map[scopeKey]int32
	pays     map[payKey]pingRef

	// Progress, when set, is called now and then with the number of bytes
	// read so far from the current log.
	Progress func(read int64)
}

// ctxKey names a context: one labeled connection, or the unlabeled lines of
// one logger and thread in one file, which inference splits into streams.
type ctxKey struct {
	file   int
	src    source
	conn   string
	logger string
	thread string
}

// scopeKey is where ping payloads are matched with pong payloads: a pong is
// logged by whichever thread reads it, so threads share a scope.
type scopeKey struct {
	file   int
	src    source
	conn   string
	logger string
}

type payKey struct {
	scope int32
	hash  uint64
}

// pingRef points at a ping; idx -1 is a ping frame that was no keepalive
// ping (the application's own ping), whose pong is ignored.
type pingRef struct{ ctx, idx int32 }

// ping is one keepalive ping and what became of it, with the lines that
// tell it (for --lines): line is its first, line2 the other of its keepalive
// line and its frame, pongLine the first pong line (frame or keepalive),
// confirmLine the keepalive pong line, timeoutLine its timeout; 0 when none.
type ping struct {
	t, pongT, timeoutT int64
	hash               uint64
	line, pongLine     int32
	line2, confirmLine int32
	timeoutLine        int32
	hasTime            bool
	pong               bool // answered: its pong frame or keepalive pong line seen
	confirmed          bool // its keepalive pong line seen
	timedOut           bool
}

// mark is a time-stamped event other than a ping: a peer's ping, an orphan
// timeout, an open or close.
type mark struct {
	t       int64
	line    int32
	ord     int32 // pings of the context before it
	hasTime bool
	// A peer's ping: Tether's since attribute in microseconds (0 when
	// absent), the exact gap since the peer's previous ping, and the hash of
	// its payload (0 when not logged), to find the other end's log of the
	// same ping. A server's log holds one mark per received ping: since
	// fits beside hasTime, the mark takes 32 bytes.
	since int32
	hash  uint64
}

type context struct {
	key     ctxKey
	labeled bool
	scope   int32
	role    string
	remote  string
	lines   int
	untimed int

	pings         []ping
	pendingIntent int32 // a ping logged before its frame, waiting for it
	frame         pendingFrame
	open          []int32 // pings whose keepalive pong line has not come
	rtts          []int64 // recent round trips, to tell whose pong an ambiguous line is
	declared      int64   // Tether's interval attribute
	openInterval  int64   // Tether's ping_interval in its connection open; -1 when unknown, 0 when off

	peer     []mark
	timeouts []mark // timeouts that matched no ping
	opens    []mark
	closes   []mark
	fails    []mark // python-websockets' "failing connection with code 1011"

	reqPath   string
	endpoints []string // where this context's client connections went
	served    string   // the path a server connection was opened on
	local     string   // the connection's own address, when its records carry one
}

// pendingFrame is a ping frame logged before its keepalive line (python-
// websockets 15 and later), or an application's ping.
type pendingFrame struct {
	t       int64
	hash    uint64
	line    int32
	hasTime bool
	valid   bool
}

// Counts says how many lines were read and how many were understood.
type Counts struct {
	Lines     int `json:"lines"`
	Parsed    int `json:"parsed"`    // lines of a known source
	Keepalive int `json:"keepalive"` // lines about keepalive or a connection's life
	Skipped   int `json:"skipped"`   // lines of no known source
	Untimed   int `json:"untimed"`   // keepalive lines without a timestamp
}

// NewAnalyzer returns an empty Analyzer.
func NewAnalyzer() *Analyzer {
	return &Analyzer{
		p:        newParser(),
		ctxIndex: map[ctxKey]int32{},
		scopes:   map[scopeKey]int32{},
		pays:     map[payKey]pingRef{},
	}
}

// Analyze reads one log and returns its report.
func Analyze(r io.Reader) (*Report, error) {
	a := NewAnalyzer()
	if err := a.Feed(r); err != nil {
		return nil, err
	}
	return a.Report(), nil
}

// Feed reads one log to its end, streaming: memory grows with the number of
// keepalive pings, not with the log's size. Lines of different Feed calls
// are never taken for lines of one unlabeled connection.
func (a *Analyzer) Feed(r io.Reader) error { return a.FeedNamed("", r) }

// FeedNamed is Feed for a log with a name, which the report gives with the
// line numbers of its streams.
func (a *Analyzer) FeedNamed(name string, r io.Reader) error {
	a.file++
	a.files = append(a.files, fileStart{name: name, before: a.line})
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	var read, reported int64
	for {
		chunk, err := br.ReadSlice('\n')
		read += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if len(line) > 0 {
			a.addLine(line)
		}
		if a.Progress != nil && read-reported >= 1<<20 {
			a.Progress(read)
			reported = read
		}
		if err == io.EOF {
			if a.Progress != nil {
				a.Progress(read)
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (a *Analyzer) addLine(line []byte) {
	if line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	a.line++
	a.counts.Lines++
	rec := a.p.parse(line)
	switch {
	case rec.kind == kindNone:
		a.counts.Skipped++
		return
	case rec.kind == kindOther:
		a.counts.Parsed++
		return
	}
	a.counts.Parsed++
	a.counts.Keepalive++
	if !rec.hasTime {
		a.counts.Untimed++
	}
	a.add(rec)
}

func (a *Analyzer) context(rec *record) (int32, *context) {
	key := ctxKey{file: a.file, src: rec.src, logger: rec.logger, thread: rec.thread}
	skey := scopeKey{file: a.file, src: rec.src, logger: rec.logger}
	if rec.conn != "" {
		key = ctxKey{src: rec.src, conn: rec.conn}
		skey = scopeKey{src: rec.src, conn: rec.conn}
	}
	if i, ok := a.ctxIndex[key]; ok {
		return i, a.ctxs[i]
	}
	scope, ok := a.scopes[skey]
	if !ok {
		scope = int32(len(a.scopes))
		a.scopes[skey] = scope
	}
	c := &context{key: key, labeled: rec.conn != "", scope: scope, pendingIntent: -1, openInterval: -1}
	switch {
	case strings.HasSuffix(rec.logger, ".client"):
		c.role = "client"
	case strings.HasSuffix(rec.logger, ".server"):
		c.role = "server"
	}
	i := int32(len(a.ctxs))
	a.ctxs = append(a.ctxs, c)
	a.ctxIndex[key] = i
	return i, c
}

// closeLines is how far apart, in lines, a keepalive line and its ping frame
// may be logged.
const closeLines = 50

func (a *Analyzer) add(rec record) {
	ci, c := a.context(&rec)
	c.lines++
	if !rec.hasTime {
		c.untimed++
	}
	if rec.role != "" {
		c.role = rec.role
	}
	if rec.remote != "" {
		c.remote = rec.remote
	}
	if rec.local != "" {
		c.local = rec.local
	}
	m := mark{t: rec.t, line: a.line, ord: int32(len(c.pings)), hasTime: rec.hasTime}
	switch rec.kind {
	case kindPing:
		c.pendingIntent = c.newPing(m, 0)
		c.frame.valid = false
		if rec.dur > 0 {
			c.declared = rec.dur
		}
	case kindPingAfter:
		if f := c.frame; f.valid && a.line-f.line <= closeLines {
			idx := c.newPing(mark{t: f.t, line: f.line, hasTime: f.hasTime}, f.hash)
			c.pings[idx].line2 = a.line
			a.pays[payKey{c.scope, f.hash}] = pingRef{ci, idx}
			c.frame.valid = false
		} else {
			c.newPing(m, 0)
		}
	case kindPingOut:
		if pi := c.pendingIntent; pi >= 0 && c.pings[pi].hash == 0 && a.line-c.pings[pi].line <= closeLines {
			c.pings[pi].hash, c.pings[pi].line2 = rec.payload, a.line
			a.pays[payKey{c.scope, rec.payload}] = pingRef{ci, pi}
			c.pendingIntent = -1
		} else {
			c.frame = pendingFrame{t: rec.t, hash: rec.payload, line: a.line, hasTime: rec.hasTime, valid: true}
			a.pays[payKey{c.scope, rec.payload}] = pingRef{ci, -1}
		}
	case kindPongIn:
		key := payKey{c.scope, rec.payload}
		if ref, ok := a.pays[key]; ok {
			delete(a.pays, key)
			if ref.idx >= 0 {
				p := &a.ctxs[ref.ctx].pings[ref.idx]
				if !p.pong {
					p.pong, p.pongT, p.pongLine = true, rec.t, a.line
				}
			}
		}
	case kindPong:
		c.pongLine(rec, a.line)
	case kindTimeout:
		c.timeout(m)
	case kindPeerPing:
		m.hash = rec.payload
		if us := rec.dur / 1e3; us > 0 && us <= math.MaxInt32 {
			m.since = int32(us)
		}
		c.peer = append(c.peer, m)
	case kindOpen:
		c.opened(rec, m)
	case kindClosed:
		c.closes = append(c.closes, m)
	case kindFail:
		c.failed(m)
	case kindRequest:
		c.reqPath = rec.url
		if c.role == "" {
			c.role = rec.role
		}
	case kindHost:
		if rec.role == "client" && c.reqPath != "" {
			c.endpoints = append(c.endpoints, rec.url+c.reqPath)
		}
		c.reqPath = ""
	}
}

// opened notes a connection's open: where it goes or was opened, and
// Tether's keepalive setting.
func (c *context) opened(rec record, m mark) {
	c.opens = append(c.opens, m)
	switch {
	case rec.url == "":
	case rec.role == "client":
		c.endpoints = append(c.endpoints, endpoint(rec.url))
	case rec.role == "server":
		c.served = rec.url
	}
	if rec.src == srcTether && rec.dur >= 0 {
		c.openInterval = rec.dur
	}
}

// endpoint drops a URL's scheme: "ws://host:port/path" -> "host:port/path".
func endpoint(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		return url[i+3:]
	}
	return url
}

func (c *context) newPing(m mark, hash uint64) int32 {
	c.pings = append(c.pings, ping{t: m.t, line: m.line, hasTime: m.hasTime, hash: hash})
	idx := int32(len(c.pings) - 1)
	c.open = append(c.open, idx)
	if len(c.open) > 64 {
		c.open = c.open[len(c.open)-64:]
	}
	return idx
}

// pongLine settles the ping a keepalive pong line answers. In a labeled
// context there is one candidate. Among unlabeled connections it is the
// ping whose pong frame came first and is not yet settled, else the ping
// whose round trip would be most like the recent ones.
func (c *context) pongLine(rec record, line int32) {
	best := -1
	for i, idx := range c.open {
		p := &c.pings[idx]
		if p.pong && (best < 0 || p.pongLine < c.pings[c.open[best]].pongLine) {
			best = i
		}
	}
	if best < 0 {
		best = c.likeliestUnanswered(rec)
	}
	if best < 0 {
		return
	}
	p := &c.pings[c.open[best]]
	p.confirmed, p.confirmLine = true, line
	if !p.pong {
		p.pong, p.pongT, p.pongLine = true, rec.t, line
	}
	if rec.dur >= 0 && p.hasTime {
		p.pongT = p.t + rec.dur // Tether's exact rtt attribute
	}
	if p.hasTime && rec.hasTime {
		c.rtts = append(c.rtts, p.pongT-p.t)
		if len(c.rtts) > 16 {
			c.rtts = c.rtts[1:]
		}
	}
	c.open = append(c.open[:best], c.open[best+1:]...)
}

// likeliestUnanswered picks, among the open pings with no pong, the one a
// pong line at rec's time most likely answers: the round trip closest to the
// typical one (in ratio), else the latest ping.
func (c *context) likeliestUnanswered(rec record) int {
	var cands []int
	for i, idx := range c.open {
		if p := c.pings[idx]; !p.pong && !p.timedOut {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return -1
	}
	typical := median64(c.rtts)
	if len(cands) == 1 || typical <= 0 || !rec.hasTime {
		return cands[len(cands)-1]
	}
	best, bestCost := -1, math.Inf(1)
	for _, i := range cands {
		p := c.pings[c.open[i]]
		rtt := float64(rec.t - p.t)
		if rtt < 0 || !p.hasTime {
			continue
		}
		cost := math.Abs(math.Log((rtt + 1e5) / float64(typical+1e5)))
		if cost < bestCost {
			best, bestCost = i, cost
		}
	}
	if best < 0 {
		return cands[len(cands)-1]
	}
	return best
}

// timeout settles a keepalive timeout on the oldest ping still waiting for
// its pong: the other connections' pings in flight are younger.
func (c *context) timeout(m mark) {
	for i, idx := range c.open {
		p := &c.pings[idx]
		if !p.pong && !p.timedOut {
			p.timedOut, p.timeoutT, p.timeoutLine = true, m.t, m.line
			c.open = append(c.open[:i], c.open[i+1:]...)
			return
		}
	}
	c.timeouts = append(c.timeouts, m)
}

// failed notes a 1011 failure. After a keepalive timeout it is the same
// incident, told by the timeout; without one (a log that filters warnings,
// a library that logs only the failure) it times out the oldest ping still
// waiting, when there is one: a failure with no ping in flight is not
// keepalive's.
func (c *context) failed(m mark) {
	c.fails = append(c.fails, m)
	for i := len(c.pings) - 1; i >= 0 && i >= len(c.pings)-8; i-- {
		if p := c.pings[i]; p.timedOut && m.line-p.timeoutLine <= 3 {
			return
		}
	}
	for _, idx := range c.open {
		if p := c.pings[idx]; !p.pong && !p.timedOut {
			c.timeout(m)
			return
		}
	}
}

func median64(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
