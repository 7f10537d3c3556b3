package tether

import (
	"encoding/json"
	"time"
)

// ConnInfo is a snapshot of one connection, with the fields and JSON names
// of the dashboard's /api/connections (docs/contracts.md): times are RFC
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

	// The peer's keepalive: pings received, their cadence over the last
	// few (median, min, max; null before the second) and the last one.
	PeerPings           int64      `json:"peer_pings"`
	PeerPingInterval    *Seconds   `json:"peer_ping_interval"`
	PeerPingIntervalMin *Seconds   `json:"peer_ping_interval_min"`
	PeerPingIntervalMax *Seconds   `json:"peer_ping_interval_max"`
	LastPeerPingAt      *time.Time `json:"last_peer_ping_at"`

	// A server connection's client, as its request said.
	UserAgent    string `json:"user_agent,omitempty"`
	ForwardedFor string `json:"forwarded_for,omitempty"`

	// Messages waiting for the application, and whether it stopped the
	// connection's reading (see ConnOptions.ReadAhead).
	QueuedMessages    int        `json:"queued_messages"`
	QueuedBytes       int64      `json:"queued_bytes"`
	ReadStalledSince  *time.Time `json:"read_stalled_since"`
	ReadStalls        int64      `json:"read_stalls"`
	DiscardedMessages int64      `json:"discarded_messages"`

	// How it ended: null while open.
	ClosedAt       *time.Time `json:"closed_at"`
	CloseCode      *int       `json:"close_code"`
	CloseReason    string     `json:"close_reason,omitempty"`
	CloseInitiator string     `json:"close_initiator,omitempty"` // "local" or "peer"
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
	timeouts, stalls, discarded := st.rareCounts()
	info := ConnInfo{
		ID:            c.id.String(),
		Role:          c.role.String(),
		Remote:        addrString(c.nc.RemoteAddr()),
		Local:         addrString(c.nc.LocalAddr()),
		Path:          c.path,
		Subprotocol:   c.subprotocol,
		State:         c.state(),
		OpenedAt:      c.opened(),
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
		PingTimeouts:  timeouts,
		CallSite:      c.callSite.String(),
	}
	if st.pongsRcvd.Load() > 0 {
		ms := float64(st.rtt.Load()) / float64(time.Millisecond)
		info.RTTms = &ms
	}
	c.peerInfo(&info)
	if c.client != noClient {
		id := c.client.Value()
		info.UserAgent, info.ForwardedFor = id.agent, id.forwarded
	}
	info.QueuedMessages, info.QueuedBytes = c.queued()
	info.ReadStalledSince = timePtr(c.stalledAt.Load())
	info.ReadStalls = stalls
	info.DiscardedMessages = discarded
	if c.isDone() {
		at := c.err.at.UTC()
		code := int(c.err.Code)
		info.ClosedAt, info.CloseCode = &at, &code
		info.CloseReason, info.CloseInitiator = c.err.Reason, c.err.Initiator
	}
	return info
}

// peerInfo fills in the peer's keepalive.
func (c *conn) peerInfo(info *ConnInfo) {
	pk := c.peerKeepalive()
	info.PeerPings = pk.Pings
	if pk.Pings > 0 {
		t := pk.Last.UTC()
		info.LastPeerPingAt = &t
	}
	if pk.Interval > 0 {
		iv, lo, hi := Seconds(pk.Interval), Seconds(pk.Min), Seconds(pk.Max)
		info.PeerPingInterval, info.PeerPingIntervalMin, info.PeerPingIntervalMax = &iv, &lo, &hi
	}
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
