package diagnose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// peersTruth is what testdata/gen/peers.py knows of the server's
// connections: which client each one is, by the client socket's address.
type peersTruth struct {
	Connections []struct {
		Client       string  `json:"client"`
		ClientID     string  `json:"client_id"`
		Local        string  `json:"local"`
		PeerInterval float64 `json:"peer_interval_s"`
		InClientsLog bool    `json:"in_clients_log"`
		Labeled      bool    `json:"labeled"`
		ServerConn   string  `json:"server_conn"`
	} `json:"connections"`
}

func readPeersTruth(t *testing.T) peersTruth {
	t.Helper()
	var tr peersTruth
	b, err := os.ReadFile(filepath.Join(fixtureDir(), "tether-serve-peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Connections) != 5 {
		t.Fatalf("truth has %d connections, want 5", len(tr.Connections))
	}
	return tr
}

func streamByConn(rep *Report, conn string) *Stream {
	for i := range rep.Streams {
		if rep.Streams[i].Conn == conn {
			return &rep.Streams[i]
		}
	}
	return nil
}

// TestServerLogPeers reads a Tether server's log of three clients of one
// process on 127.0.0.1 (2 s, 0.5 s, 0.5 s, each shorter-lived than the
// server's own 20 s keepalive) and two other hosts at 20 s, as the CLI
// writes it and with the since attribute: each connection's peer cadence,
// one interval-mismatch naming exactly the three, nothing else.
func TestServerLogPeers(t *testing.T) {
	tr := readPeersTruth(t)
	for _, file := range []string{"tether-serve-peers.log", "tether-serve-peers-since.log"} {
		t.Run(file, func(t *testing.T) {
			rep := analyzeFile(t, file)
			if len(rep.Streams) != 5 {
				t.Fatalf("%d streams, want 5", len(rep.Streams))
			}
			var oneHost []string
			for _, c := range tr.Connections {
				s := streamByConn(rep, c.ServerConn)
				if s == nil {
					t.Fatalf("no stream for %s (client %s)", c.ServerConn, c.Client)
				}
				if s.Role != "server" || s.Remote != c.Local || s.Endpoint != "/echo" || s.PeerPings < 2 || s.PeerInterval == nil {
					t.Fatalf("client %s: stream %+v", c.Client, s)
				}
				if d := math.Abs(s.PeerInterval.Median-c.PeerInterval) / c.PeerInterval; d > 0.05 {
					t.Errorf("client %s: peer interval %v, it pinged every %v s", c.Client, s.PeerInterval.Median, c.PeerInterval)
				}
				if s.Declared == nil || *s.Declared != 20 {
					t.Errorf("client %s: declared %v, want the open's ping_interval 20 s", c.Client, s.Declared)
				}
				if strings.HasPrefix(c.Local, "127.0.0.1:") {
					oneHost = append(oneHost, c.ServerConn)
				}
			}
			if len(rep.Findings) != 1 {
				t.Fatalf("findings %v, want one interval-mismatch", findingKinds(rep))
			}
			f := rep.Findings[0]
			if f.Kind != KindIntervalMismatch || f.Severity != "warning" || !sameSet(f.Conns, oneHost) {
				t.Errorf("finding %s %s on %v, want interval-mismatch on %v", f.Severity, f.Kind, f.Conns, oneHost)
			}
			for _, want := range []string{"3 connections from 127.0.0.1 to /echo, open at the same time, ping at 2.0 s", "several client instances in one process"} {
				if !strings.Contains(f.Message, want) {
					t.Errorf("message lacks %q: %s", want, f.Message)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestBothEnds reads the clients' log with the server's, in either order:
// each of the three connections is paired with its other end by the
// payloads of its pings (the unlabeled ones included: the stream holding
// that client's pings), and the two hosts whose log is absent are not.
func TestBothEnds(t *testing.T) {
	tr := readPeersTruth(t)
	var clients truth
	b, err := os.ReadFile(filepath.Join(fixtureDir(), "peers-clients.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &clients); err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]string{{"peers-clients.log", "tether-serve-peers-since.log"}, {"tether-serve-peers.log", "peers-clients.log"}} {
		t.Run(order[0], func(t *testing.T) {
			a := NewAnalyzer()
			for _, name := range order {
				f, err := os.Open(filepath.Join(fixtureDir(), name))
				if err != nil {
					t.Fatal(err)
				}
				err = a.Feed(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			rep := a.Report()
			// The clients' intervals (2 s, 0.5 s) are a mismatch; the
			// server's own 20 s is not one more interval among them.
			mismatches := 0
			for _, f := range rep.Findings {
				if f.Kind != KindIntervalMismatch {
					continue
				}
				mismatches++
				roles := map[string]bool{}
				for _, name := range f.Streams {
					roles[rep.Streams[streamIndex(rep, name)].Role] = true
				}
				if len(roles) != 1 {
					t.Errorf("interval-mismatch across roles %v: %s", roles, f.Message)
				}
			}
			if mismatches != 2 {
				t.Errorf("%d interval-mismatch findings, want the clients' and the server's view of them: %v", mismatches, findingKinds(rep))
			}
			for _, c := range tr.Connections {
				s := streamByConn(rep, c.ServerConn)
				if !c.InClientsLog {
					if s.Peer != nil {
						t.Errorf("client %s, whose log is absent, paired with %s", c.Client, s.Peer.Name)
					}
					continue
				}
				if s.Peer == nil || s.Peer.By != "payloads" {
					t.Fatalf("client %s: server stream %s has peer %+v", c.Client, s.Name, s.Peer)
				}
				other := &rep.Streams[streamIndex(rep, s.Peer.Name)]
				if other.Peer == nil || other.Peer.Name != s.Name || other.Role != "client" {
					t.Errorf("client %s: the pairing is not mutual: %+v", c.Client, other.Peer)
				}
				if c.Labeled && s.Peer.Conn != c.ClientID {
					t.Errorf("client %s: paired with %s, want %s", c.Client, s.Peer.Conn, c.ClientID)
				}
				if !c.Labeled && order[0] == "peers-clients.log" { // its line numbers are the truth's
					ci := slices.IndexFunc(clients.Connections, func(tc truthConn) bool { return tc.ID == c.ClientID })
					mine := 0
					for _, l := range other.pingLines {
						if clients.LineConns[l-1] == ci {
							mine++
						}
					}
					if ci < 0 || mine*10 < len(other.pingLines)*9 {
						t.Errorf("client %s: paired with %s, of whose %d pings it wrote %d", c.Client, s.Peer.Name, len(other.pingLines), mine)
					}
				}
				if s.Peer.Matches*2 < other.Pings {
					t.Errorf("client %s: %d pings matched of %d", c.Client, s.Peer.Matches, other.Pings)
				}
			}
		})
	}
}

// tetherLog writes slog text records; at is seconds from a fixed start.
type tetherLog struct{ strings.Builder }

func (l *tetherLog) rec(at float64, msg, conn, role, remote, extra string) {
	t := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC).Add(time.Duration(at * float64(time.Second)))
	fmt.Fprintf(l, "time=%s level=DEBUG msg=%q conn=%s role=%s remote=%s%s\n",
		t.Format("2006-01-02T15:04:05.000Z07:00"), msg, conn, role, remote, extra)
}

// serverConn logs a server connection from remote, open from start to end,
// whose peer pings every peerIv and which pings every ownIv (0: never).
func (l *tetherLog) serverConn(conn, remote string, start, end, peerIv, ownIv float64, declared string) {
	l.rec(start, "connection open", conn, "server", remote, " path=/echo ping_interval="+declared)
	for t := start + peerIv; peerIv > 0 && t < end; t += peerIv {
		l.rec(t, "received ping", conn, "server", remote, fmt.Sprintf(" payload=%08x", int(t*1000)))
	}
	for t := start + ownIv; ownIv > 0 && t < end; t += ownIv {
		l.rec(t, "sent keepalive ping", conn, "server", remote, " interval="+declared)
		l.rec(t+0.001, "received keepalive pong", conn, "server", remote, " rtt=1ms")
	}
	l.rec(end, "connection closed", conn, "server", remote, "")
}

// TestServerFindings: what a server's log of its peers is reported for,
// and what it is not.
func TestServerFindings(t *testing.T) {
	tests := []struct {
		name  string
		log   func(l *tetherLog)
		want  []string // finding kinds, in order
		conns []string // the first finding's conns
	}{
		{"own 20 s next to the peers' 0.5 s is no mismatch", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 65, 0.5, 20, "20s")
			l.serverConn("s2", "10.1.0.2:4000", 3.3, 65, 0.5, 20, "20s")
		}, nil, nil},
		{"one host at two intervals", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 30, 2, 20, "20s")
			l.serverConn("s2", "10.1.0.1:4001", 0, 30, 0.5, 20, "20s")
			l.serverConn("s3", "10.1.0.2:4000", 0, 30, 5, 20, "20s")
		}, []string{KindIntervalMismatch}, []string{"s1", "s2"}},
		{"one host, one interval, at once", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 10, 0.5, 0, "20s")
			l.serverConn("s2", "10.1.0.1:4001", 1, 10, 0.5, 0, "20s")
		}, []string{KindDuplicate}, []string{"s1", "s2"}},
		{"one host, one after the other", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 10, 0.5, 0, "20s")
			l.serverConn("s2", "10.1.0.1:4001", 11, 20, 2, 0, "20s")
		}, nil, nil},
		{"keepalive off: peer pings only", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 10, 0.5, 0, "0s")
		}, []string{KindPeerPingsOnly}, []string{"s1"}},
		{"server intervals compared among servers", func(l *tetherLog) {
			l.serverConn("s1", "10.1.0.1:4000", 0, 65, 0, 20, "20s")
			l.serverConn("s2", "10.1.0.2:4000", 0, 65, 0, 5, "5s")
		}, []string{KindIntervalMismatch}, []string{"s1", "s2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l tetherLog
			tt.log(&l)
			rep, err := Analyze(strings.NewReader(l.String()))
			if err != nil {
				t.Fatal(err)
			}
			if got := findingKinds(rep); !slices.Equal(got, tt.want) {
				t.Fatalf("findings %v, want %v: %+v", got, tt.want, rep.Findings)
			}
			if len(tt.want) > 0 && !sameSet(rep.Findings[0].Conns, tt.conns) {
				t.Errorf("%s on %v, want %v", tt.want[0], rep.Findings[0].Conns, tt.conns)
			}
		})
	}
}

// TestPeerIntervalSince: Tether's since attribute is the peer's interval,
// exact where the records' times are not (here: one record a second, each
// saying 500 ms since the previous ping, as when records come late).
func TestPeerIntervalSince(t *testing.T) {
	var l tetherLog
	for i := range 5 {
		extra := " payload=0102030" + fmt.Sprint(i)
		if i > 0 {
			extra += " since=500.4ms"
		}
		l.rec(float64(i), "received ping", "s1", "server", "10.1.0.1:4000", extra)
	}
	rep, err := Analyze(strings.NewReader(l.String()))
	if err != nil {
		t.Fatal(err)
	}
	if iv := rep.Streams[0].PeerInterval; iv == nil || iv.Median != 0.5 || iv.Max != 0.5 {
		t.Fatalf("peer interval %+v, want 0.5 s from since", iv)
	}
}

// TestPairByAddress: a client whose records carry its local address is the
// server connection whose remote that is, and alive at the same time; a
// port reused later is not it.
func TestPairByAddress(t *testing.T) {
	var l tetherLog
	l.rec(0, "connection open", "c1", "client", "10.1.0.9:443", " local=10.1.0.1:4000 url=wss://h/echo ping_interval=20s")
	l.rec(30, "connection closed", "c1", "client", "10.1.0.9:443", " local=10.1.0.1:4000")
	l.serverConn("old", "10.1.0.1:4000", -600, -500, 1, 0, "20s")
	l.serverConn("s1", "10.1.0.1:4000", 0.01, 30, 1, 0, "20s")
	l.serverConn("s2", "10.1.0.1:4001", 0.01, 30, 1, 0, "20s")
	rep, err := Analyze(strings.NewReader(l.String()))
	if err != nil {
		t.Fatal(err)
	}
	c, s1 := streamByConn(rep, "c1"), streamByConn(rep, "s1")
	if c == nil || c.Local != "10.1.0.1:4000" || c.Peer == nil || c.Peer.Conn != "s1" || c.Peer.By != "addresses" {
		t.Fatalf("client stream %+v, peer %+v", c, c.Peer)
	}
	if s1.Peer == nil || s1.Peer.Conn != "c1" || streamByConn(rep, "old").Peer != nil || streamByConn(rep, "s2").Peer != nil {
		t.Errorf("s1 peer %+v; old and s2 must have none", s1.Peer)
	}
}

// BenchmarkAnalyzeServer measures a server's log of a million received
// pings (with payload and since) from 600 clients at 2 s, 0.5 s and 20 s.
func BenchmarkAnalyzeServer(b *testing.B) {
	var l tetherLog
	for i := 0; l.Len() < 1_000_000*160; i++ {
		l.serverConn(fmt.Sprintf("01a25323-%04x-7a1a-85de-d5d978d8f6b0", i), fmt.Sprintf("10.0.%d.%d:%d", i/250, i%250, 40000+i),
			float64(i%7), 900, []float64{2, 0.5, 20}[i%3], 20, "20s")
	}
	data := []byte(l.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Analyze(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes.Count(data, []byte("\n")))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
