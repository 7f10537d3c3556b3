package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Mode is what the connections do.
type Mode string

// Modes.
const (
	// Echo sends messages and times each reply: closed loop (each connection
	// sends its next message when the reply arrives) or, with Rate, open
	// loop at a fixed schedule.
	Echo Mode = "echo"
	// Idle opens the connections and holds them, answering pings.
	Idle Mode = "idle"
	// Handshake opens and closes connections in a loop; Conns of them at a
	// time.
	Handshake Mode = "handshake"
	// Broadcast connects Conns subscribers and one publisher to a broadcast
	// endpoint and times each published message until every subscriber has
	// it.
	Broadcast Mode = "broadcast"
)

// Defaults.
const (
	DefaultConns           = 10
	DefaultDuration        = 10 * time.Second
	DefaultSize            = 64
	DefaultTimeout         = 10 * time.Second
	DefaultDialConcurrency = 128
	DefaultBroadcastGap    = 50 * time.Millisecond
)

// Config describes one run.
type Config struct {
	// URLs are the servers; connection i goes to URLs[(ConnOffset+i) % len].
	URLs []string
	Mode Mode
	// Conns is the number of connections (Handshake: concurrent dialers;
	// Broadcast: subscribers, plus one publisher).
	Conns int
	// ConnOffset numbers this process's connections after those of other
	// processes of a split run, so they spread over URLs the same way.
	ConnOffset int
	// Duration of the measured window, after Warmup. Ignored when Messages
	// is set.
	Duration time.Duration
	// Messages ends the measured window after this many replies (Echo),
	// handshakes (Handshake) or broadcasts (Broadcast) instead of after
	// Duration.
	Messages int64
	// Warmup runs the load unmeasured before the window. In Idle mode it is
	// the time the connections settle after the last one opened.
	Warmup time.Duration
	// Size is the message size in bytes (at least 24 in Broadcast mode,
	// which carries a timestamp).
	Size int
	// Text sends text messages instead of binary ones.
	Text bool
	// Rate is the target of messages per second over all connections (Echo,
	// Broadcast); 0 means closed loop (Echo) or one broadcast after another
	// (Broadcast).
	Rate float64
	// Compression offers permessage-deflate as a browser does (the server
	// chooses context takeover or not).
	Compression bool
	// Timeout bounds each dial and handshake, and how long the end of a run
	// waits for replies and close frames.
	Timeout time.Duration
	// DialConcurrency is how many dials run at once while connecting.
	DialConcurrency int
	// Header is sent with every opening handshake.
	Header http.Header
	// Insecure skips TLS certificate verification for wss:// URLs.
	Insecure bool
	// NoCloseHandshake ends the run by closing the sockets, without the
	// closing handshake: quicker with many connections, when the server is
	// about to be stopped anyway.
	NoCloseHandshake bool

	// OnEvent, when set, is called as the run goes through its phases:
	// "connected" (every connection opened or failed), "measure" (the
	// measured window starts) and "done" (it ends, before closing).
	OnEvent func(event string)
	// OnProgress, when set, is called about five times a second with the
	// replies (or handshakes, or deliveries) counted so far in the measured
	// window.
	OnProgress func(done int64)
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = Echo
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Duration == 0 && c.Messages == 0 {
		c.Duration = DefaultDuration
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = DefaultDialConcurrency
	}
	return c
}

// minBroadcastSize is the header a broadcast message carries: a marker, its
// sequence number and the publisher's clock.
const minBroadcastSize = 24

func (c Config) validate() error {
	if len(c.URLs) == 0 {
		return errors.New("no URL given")
	}
	for _, u := range c.URLs {
		if _, err := parseTarget(u); err != nil {
			return err
		}
	}
	switch c.Mode {
	case Echo, Idle, Handshake, Broadcast:
	default:
		return fmt.Errorf("unknown mode %q (echo, idle, handshake or broadcast)", c.Mode)
	}
	switch {
	case c.Conns < 0:
		return errors.New("connections must be positive")
	case c.Size < 0:
		return errors.New("message size must not be negative")
	case c.Mode == Broadcast && c.Size < minBroadcastSize:
		return fmt.Errorf("broadcast messages carry a %d-byte timestamp header: size must be at least %d", minBroadcastSize, minBroadcastSize)
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Duration < 0 || c.Warmup < 0 || c.Messages < 0:
		return errors.New("duration, warm-up and message count must not be negative")
	}
	return nil
}

// Files is the number of file descriptors a run of c needs in this process:
// one per connection and a margin for the process itself.
func (c Config) Files() int {
	c = c.withDefaults()
	n := c.Conns
	if c.Mode == Broadcast {
		n++
	}
	return n + fileMargin
}

// target is a parsed server URL.
type target struct {
	url      *url.URL
	addr     string // host:port to dial
	tls      bool
	hostHdr  string
	request  string // request target: path and query
	original string
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", raw, err)
	}
	t := &target{url: u, original: raw, hostHdr: u.Host}
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		t.tls = true
	default:
		return nil, fmt.Errorf("URL %q: scheme must be ws or wss", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	t.addr = u.Host
	if u.Port() == "" {
		port := "80"
		if t.tls {
			port = "443"
		}
		t.addr = u.Hostname() + ":" + port
		if u.Hostname() != "" && u.Host[0] == '[' {
			t.addr = "[" + u.Hostname() + "]:" + port
		}
	}
	t.request = u.RequestURI()
	return t, nil
}
