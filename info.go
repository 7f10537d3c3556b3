package tether

import (
	"encoding/json"
	"time"
)

// ConnInfo is a snapshot of one connection, with the fields and JSON names
// of the dashboard's /api/connections (DESIGN.md Contract 2): times are RFC
// 3339 strings, null before the first event; ping_interval and ping_timeout
// are seconds; rtt_ms is milliseconds, null before the first pong.
type ConnInfo struct {
	ID            string     `json:"id"`
	Role          string     `json:"role"`
	Remote        string     `json:"remote"`
	Local         string     `json:"local"`
	Path          string     `json:"path"` // request path (server) or URL (client)
	Subprotocol   string     `json:"subprotocol"`
	State         string     `json:"state"`
	OpenedAt      time.Time  `json:"opened_at"`
	PingInterval  Seconds    `json:"ping_interval"`
	PingTimeout   Seconds    `json:"ping_timeout"`
	KeepaliveMode string     `json:"keepalive_mode"`
	LastPingAt    *time.Time `json:"last_ping_at"`
	LastPongAt    *time.Time `json:"last_pong_at"`
	LastRecvAt    *time.Time `json:"last_recv_at"`
	RTTms         *float64   `json:"rtt_ms"`
	MessagesIn    int64      `json:"messages_in"`
	MessagesOut   int64      `json:"messages_out"`
	BytesIn       int64      `json:"bytes_in"`
	BytesOut      int64      `json:"bytes_out"`
	PingsSent     int64      `json:"pings_sent"`
	PongsReceived int64      `json:"pongs_received"`
	PingTimeouts  int64      `json:"ping_timeouts"`
	CallSite      string     `json:"call_site"` // file:line of the Dial or Accept that opened it
}

// Seconds is a duration that marshals to JSON as a number of seconds.
type Seconds time.Duration

// MarshalJSON writes the duration in seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(s).Seconds())
}

// UnmarshalJSON reads a number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// Info returns a snapshot of the connection for APIs and dashboards.
func (c *Conn) Info() ConnInfo { return c.info() }

func (c *conn) info() ConnInfo {
	st := &c.stats
	info := ConnInfo{
		ID:            c.id,
		Role:          c.role.String(),
		Remote:        c.addrs().remote,
		Local:         c.addrs().local,
		Path:          c.path,
		Subprotocol:   c.subprotocol,
		State:         c.state(),
		OpenedAt:      c.openedAt,
		PingInterval:  Seconds(c.pingIntervalOrZero()),
		PingTimeout:   Seconds(c.pingTimeoutOrZero()),
		KeepaliveMode: c.cfg.mode.String(),
		LastPingAt:    timePtr(st.lastPingAt.Load()),
		LastPongAt:    timePtr(st.lastPongAt.Load()),
		LastRecvAt:    timePtr(c.lastRecv.Load()),
		MessagesIn:    st.messagesIn.Load(),
		MessagesOut:   st.messagesOut.Load(),
		BytesIn:       st.bytesIn.Load(),
		BytesOut:      st.bytesOut.Load(),
		PingsSent:     st.pingsSent.Load(),
		PongsReceived: st.pongsRcvd.Load(),
		PingTimeouts:  st.timeouts.Load(),
		CallSite:      c.callSite.String(),
	}
	if st.pongsRcvd.Load() > 0 {
		ms := float64(st.rtt.Load()) / float64(time.Millisecond)
		info.RTTms = &ms
	}
	return info
}

// connAddrs are a connection's addresses as text, made on the first info
// and kept: the dashboard lists every connection twice a second, and
// formatting them each time was most of that work.
type connAddrs struct{ remote, local string }

func (c *conn) addrs() *connAddrs {
	if a := c.addrText.Load(); a != nil {
		return a
	}
	a := &connAddrs{remote: addrString(c.nc.RemoteAddr()), local: addrString(c.nc.LocalAddr())}
	c.addrText.Store(a) // racing callers store the same text
	return a
}

// timePtr is unixTime for JSON: nil before the first event, UTC after.
func timePtr(n int64) *time.Time {
	t := unixTime(n)
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
