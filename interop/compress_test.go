package interop

// permessage-deflate (RFC 7692) with python-websockets 10.4 (compression on
// by default there) and Node's ws (perMessageDeflate enabled), both ways:
// Tether client -> peer server (peers/py_deflate.py server, node/deflate.js
// server) and peer client -> Tether server.
//
// For every configuration the test computes what RFC 7692 and each side's
// documented policy make the two ends agree on, and checks that both ends
// report exactly that. Then JSON-like text and binary messages of 16 B to
// 128 KiB, several in a row, sent with Write, WritePrepared and Writer, must
// come back byte for byte; and the frames, recorded on Tether's side of the
// TCP connection, must carry RSV1 wherever compression was agreed. Every
// compressed message is parsed as a DEFLATE stream (pmdInflateRefs) to check
// what no inflater checks reliably: no back-reference reaches farther than
// the negotiated window, none reaches into earlier messages where the
// sender's no_context_takeover was agreed, and the sender that may and wants
// to use context takeover does (the second copy of a repeated message refers
// back into the first).

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// pmdParams is a permessage-deflate offer or response (RFC 7692 section
// 7.1). A window-bits field is 0 when absent, -1 for a bare
// client_max_window_bits (only in offers).
type pmdParams struct {
	serverNoCtx, clientNoCtx bool
	serverBits, clientBits   int
}

func (p *pmdParams) String() string {
	if p == nil {
		return "none"
	}
	s := "permessage-deflate"
	if p.serverNoCtx {
		s += "; server_no_context_takeover"
	}
	if p.clientNoCtx {
		s += "; client_no_context_takeover"
	}
	if p.serverBits > 0 {
		s += "; server_max_window_bits=" + strconv.Itoa(p.serverBits)
	}
	switch {
	case p.clientBits > 0:
		s += "; client_max_window_bits=" + strconv.Itoa(p.clientBits)
	case p.clientBits < 0:
		s += "; client_max_window_bits"
	}
	return s
}

// parsePMD parses a Sec-WebSocket-Extensions value that is empty ("none")
// or holds exactly one permessage-deflate element, in any parameter order.
func parsePMD(v string) (*pmdParams, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "none" {
		return nil, nil
	}
	if strings.Contains(v, ",") {
		return nil, fmt.Errorf("%q: more than one extension", v)
	}
	parts := strings.Split(v, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" {
		return nil, fmt.Errorf("%q: not permessage-deflate", v)
	}
	p := &pmdParams{}
	seen := map[string]bool{}
	for _, prm := range parts[1:] {
		name, value, has := strings.Cut(strings.TrimSpace(prm), "=")
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if seen[name] {
			return nil, fmt.Errorf("%q: duplicate %s", v, name)
		}
		seen[name] = true
		bits := func() (int, error) {
			if !has {
				return -1, nil
			}
			n, err := strconv.Atoi(value)
			if err != nil || n < 8 || n > 15 || value[0] == '0' {
				return 0, fmt.Errorf("%q: %s=%s", v, name, value)
			}
			return n, nil
		}
		var err error
		switch name {
		case "server_no_context_takeover":
			p.serverNoCtx = true
		case "client_no_context_takeover":
			p.clientNoCtx = true
		case "server_max_window_bits":
			if p.serverBits, err = bits(); err == nil && p.serverBits < 0 {
				err = fmt.Errorf("%q: server_max_window_bits without a value", v)
			}
		case "client_max_window_bits":
			p.clientBits, err = bits()
		default:
			err = fmt.Errorf("%q: unknown parameter %s", v, name)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// pmdRFCCheck checks that resp is a valid answer to offer by RFC 7692
// section 7.1: the server may add restrictions, never lift one the client
// asked for.
func pmdRFCCheck(offer, resp *pmdParams) error {
	switch {
	case resp == nil:
		return nil
	case offer == nil:
		return errors.New("a response without an offer")
	case offer.serverNoCtx && !resp.serverNoCtx:
		return errors.New("server_no_context_takeover offered but not in the response")
	case offer.serverBits > 0 && (resp.serverBits == 0 || resp.serverBits > offer.serverBits):
		return fmt.Errorf("server_max_window_bits=%d offered, the response has %d", offer.serverBits, resp.serverBits)
	case resp.clientBits < 0:
		return errors.New("client_max_window_bits without a value in the response")
	case resp.clientBits > 0 && offer.clientBits == 0:
		return errors.New("client_max_window_bits in the response but not in the offer")
	case offer.clientBits > 0 && resp.clientBits > offer.clientBits:
		return fmt.Errorf("client_max_window_bits=%d offered, the response has %d", offer.clientBits, resp.clientBits)
	}
	return nil
}

// pmdSender is what one direction's sender may do under the agreed
// parameters: a window of 2^bits, and refer back to earlier messages unless
// noCtx.
func pmdSender(resp *pmdParams, server bool) (bits int, noCtx bool) {
	bits, noCtx = resp.clientBits, resp.clientNoCtx
	if server {
		bits, noCtx = resp.serverBits, resp.serverNoCtx
	}
	if bits <= 0 {
		bits = 15
	}
	return bits, noCtx
}

// pmdTether is a Tether compression configuration.
type pmdTether struct {
	mode      tether.CompressionMode
	bits      int // CompressionWindowBits; 0: the default, 15
	threshold int // CompressionThreshold; 0: the default, 128
	fragment  int // FragmentSize; 0: the default, 64 KiB
}

func (c pmdTether) apply(o *tether.ConnOptions) {
	o.CompressionMode = c.mode
	o.CompressionWindowBits = c.bits
	o.CompressionThreshold = c.threshold
	o.FragmentSize = c.fragment
}

// windowBits is the window Tether asks a peer for: never below 9, since
// zlib-based peers (python-websockets) cannot compress with 8.
func (c pmdTether) windowBits() int {
	if c.bits == 0 {
		return 15
	}
	return max(c.bits, 9)
}

func (c pmdTether) takeover() bool { return c.mode == tether.CompressionContextTakeover }

// compresses tells whether Tether compresses m when compression was agreed:
// Writer always does, Write and WritePrepared from the threshold on.
func (c pmdTether) compresses(m pmdMsg) bool {
	threshold := c.threshold
	if threshold == 0 {
		threshold = tether.DefaultCompressionThreshold
	}
	return m.how == "writer" || len(m.p) >= max(threshold, 0)
}

// tetherOffer is what a Tether client offers (docs/compression.md): the bare
// client_max_window_bits, or both windows limited to a smaller
// CompressionWindowBits; both no_context_takeover in the default mode.
func tetherOffer(c pmdTether) *pmdParams {
	if c.mode == tether.CompressionDisabled {
		return nil
	}
	p := &pmdParams{clientBits: -1}
	if b := c.windowBits(); b < 15 {
		p.serverBits, p.clientBits = b, b
	}
	if !c.takeover() {
		p.serverNoCtx, p.clientNoCtx = true, true
	}
	return p
}

// tetherResponse is a Tether server's answer (docs/compression.md: "the most
// economical parameters both accept"): the client's restrictions, plus no
// context takeover both ways in the default mode, and windows no larger than
// CompressionWindowBits where the offer lets the server say so.
func tetherResponse(c pmdTether, offer *pmdParams) *pmdParams {
	if c.mode == tether.CompressionDisabled || offer == nil {
		return nil
	}
	bits := c.windowBits()
	r := &pmdParams{serverNoCtx: offer.serverNoCtx || !c.takeover(), clientNoCtx: offer.clientNoCtx || !c.takeover()}
	switch {
	case offer.serverBits > 0:
		r.serverBits = min(offer.serverBits, bits)
	case bits < 15:
		r.serverBits = bits
	}
	switch {
	case offer.clientBits > 0:
		r.clientBits = min(offer.clientBits, bits)
	case offer.clientBits < 0 && bits < 15:
		r.clientBits = bits
	}
	return r
}

// pmdPeer configures a peer program, in both roles; zero fields are left to
// the library (all zero: the library's defaults).
type pmdPeer struct {
	serverBits, clientBits   int
	serverNoCtx, clientNoCtx bool
}

func (c pmdPeer) flags() []string {
	f := []string{}
	if c.serverBits > 0 {
		f = append(f, "--server-max-window-bits", strconv.Itoa(c.serverBits))
	}
	if c.clientBits > 0 {
		f = append(f, "--client-max-window-bits", strconv.Itoa(c.clientBits))
	}
	if c.serverNoCtx {
		f = append(f, "--server-no-context-takeover")
	}
	if c.clientNoCtx {
		f = append(f, "--client-no-context-takeover")
	}
	return f
}

// peerOffer is what python-websockets' ClientPerMessageDeflateFactory and
// ws's PerMessageDeflate.offer() send for c: both include
// client_max_window_bits, bare unless a value is configured.
func peerOffer(c pmdPeer) *pmdParams {
	p := &pmdParams{serverNoCtx: c.serverNoCtx, clientNoCtx: c.clientNoCtx, serverBits: c.serverBits, clientBits: -1}
	if c.clientBits > 0 {
		p.clientBits = c.clientBits
	}
	return p
}

// pythonResponse is ServerPerMessageDeflateFactory.process_request_params of
// websockets 10.4; its default (enable_server_permessage_deflate) limits both
// windows to 12 bits.
func pythonResponse(c pmdPeer, offer *pmdParams) *pmdParams {
	if offer == nil {
		return nil
	}
	if c == (pmdPeer{}) {
		c = pmdPeer{serverBits: 12, clientBits: 12}
	}
	r := &pmdParams{
		serverNoCtx: offer.serverNoCtx || c.serverNoCtx,
		clientNoCtx: offer.clientNoCtx || c.clientNoCtx,
		serverBits:  offer.serverBits,
	}
	if c.serverBits > 0 && (r.serverBits == 0 || r.serverBits > c.serverBits) {
		r.serverBits = c.serverBits
	}
	switch {
	case c.clientBits == 0:
		r.clientBits = max(offer.clientBits, 0) // a bare one is dropped
	case offer.clientBits < 0:
		r.clientBits = c.clientBits
	case offer.clientBits > 0:
		r.clientBits = min(offer.clientBits, c.clientBits)
	}
	return r
}

// nodeResponse is ws 8's PerMessageDeflate.acceptAsServer: it declines an
// offer asking for a smaller server window than serverMaxWindowBits, or one
// without (or with a smaller) client_max_window_bits when clientMaxWindowBits
// is set; otherwise it answers with the offer plus its own settings.
func nodeResponse(c pmdPeer, offer *pmdParams) *pmdParams {
	if offer == nil ||
		(offer.serverBits > 0 && c.serverBits > offer.serverBits) ||
		(c.clientBits > 0 && (offer.clientBits == 0 || (offer.clientBits > 0 && c.clientBits > offer.clientBits))) {
		return nil
	}
	r := *offer
	r.serverNoCtx = r.serverNoCtx || c.serverNoCtx
	r.clientNoCtx = r.clientNoCtx || c.clientNoCtx
	if c.serverBits > 0 {
		r.serverBits = c.serverBits
	}
	if c.clientBits > 0 {
		r.clientBits = c.clientBits
	} else if r.clientBits < 0 {
		r.clientBits = 0
	}
	return &r
}

// pmdCase is one configuration, run in both directions with both peers.
type pmdCase struct {
	name   string
	peer   pmdPeer
	tether pmdTether
}

var pmdCases = []pmdCase{
	// The peers' defaults against each Tether mode.
	{"peer_defaults/tether_default", pmdPeer{}, pmdTether{}},
	{"peer_defaults/tether_context_takeover", pmdPeer{}, pmdTether{mode: tether.CompressionContextTakeover}},
	{"peer_defaults/tether_disabled", pmdPeer{}, pmdTether{mode: tether.CompressionDisabled, threshold: -1}},
	{"peer_defaults/tether_no_context_takeover_12", pmdPeer{}, pmdTether{mode: tether.CompressionNoContextTakeover, bits: 12, threshold: -1}},
	// A small Tether window against peers that would allow 15 bits.
	{"peer_defaults/tether_context_takeover_9", pmdPeer{}, pmdTether{mode: tether.CompressionContextTakeover, bits: 9, threshold: -1}},
	// The same window on both sides.
	{"window_9", pmdPeer{serverBits: 9, clientBits: 9}, pmdTether{mode: tether.CompressionContextTakeover, bits: 9, threshold: -1}},
	{"window_12", pmdPeer{serverBits: 12, clientBits: 12}, pmdTether{mode: tether.CompressionContextTakeover, bits: 12, threshold: -1}},
	{"window_15", pmdPeer{serverBits: 15, clientBits: 15}, pmdTether{mode: tether.CompressionContextTakeover, bits: 15, threshold: -1}},
	// Compressed messages in fragments (RSV1 on the first only).
	{"peer_defaults/tether_context_takeover_fragments_1KiB", pmdPeer{}, pmdTether{mode: tether.CompressionContextTakeover, threshold: -1, fragment: 1 << 10}},
	// The peer forbids context takeover on one side; Tether would use it.
	{"peer_server_no_context_takeover", pmdPeer{serverNoCtx: true}, pmdTether{mode: tether.CompressionContextTakeover, threshold: -1}},
	{"peer_client_no_context_takeover", pmdPeer{clientNoCtx: true}, pmdTether{mode: tether.CompressionContextTakeover, threshold: -1}},
}

// pmdMsg is one message of the exchange and how Tether sends it: "write"
// (Conn.Write), "prepared" (Conn.WritePrepared) or "writer" (Conn.Writer).
type pmdMsg struct {
	typ tether.MessageType
	p   []byte
	how string
}

// pmdProbe is the index of the second of two identical messages: a sender
// using context takeover (with a window that holds the first) refers back
// into the first one. The first goes out with WritePrepared, which
// compresses without history but must keep the history in step.
const pmdProbe = 3

var pmdMsgs = sync.OnceValue(func() []pmdMsg {
	probe := jsonLike(1<<10, 3)
	return []pmdMsg{
		{tether.Text, jsonLike(16, 1), "write"},
		{tether.Binary, jsonLike(16, 2), "prepared"},
		{tether.Text, probe, "prepared"},
		{tether.Text, probe, "write"},
		{tether.Binary, jsonLike(1<<10, 4), "writer"},
		{tether.Text, jsonLike(16<<10, 5), "write"},
		{tether.Binary, jsonLike(16<<10, 6), "prepared"},
		{tether.Text, jsonLike(128<<10, 7), "writer"},
		{tether.Binary, jsonLike(128<<10, 8), "write"},
		{tether.Binary, jsonLike(1<<10, 9), "prepared"},
	}
})

// jsonLike returns n bytes of ASCII JSON-like content: an array of event
// records with pseudo-random fields (cut at n bytes).
func jsonLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	events := []string{"login", "logout", "update", "purchase", "view", "click"}
	tags := []string{"alpha", "beta", "gamma", "delta", "eu-west", "us-east", "mobile", "web"}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"user-%04d","event":%q,"score":%.3f,"tags":[%q,%q],"active":%t,"ts":"2025-01-%02dT%02d:%02d:%02dZ"},`,
			int(seed)*100000+i, r.IntN(5000), events[r.IntN(len(events))], r.Float64()*1000,
			tags[r.IntN(len(tags))], tags[r.IntN(len(tags))], r.IntN(2) == 0,
			1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
	}
	return b.Bytes()[:n]
}

// pmdSend sends m on c the way m.how says.
func pmdSend(ctx context.Context, c *tether.Conn, m pmdMsg) error {
	switch m.how {
	case "prepared":
		pm, err := tether.NewPreparedMessage(m.typ, m.p)
		if err != nil {
			return err
		}
		return c.WritePrepared(ctx, pm)
	case "writer":
		w, err := c.Writer(ctx, m.typ)
		if err != nil {
			return err
		}
		a, b := len(m.p)/3, 2*len(m.p)/3+7
		for _, chunk := range [][]byte{m.p[:a], m.p[a:b], m.p[b:]} {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return w.Close()
	default:
		return c.Write(ctx, m.typ, m.p)
	}
}

// pmdScript is the peer client's input: for every case after the first
// (whose URL and flags are on the command line), a line to connect to the
// Tether server with the case's flags; for each, a JSON line per message.
func pmdScript(tetherURL string, cases []pmdCase, msgs []pmdMsg) string {
	var b strings.Builder
	line := func(v any) {
		l, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	for i, cs := range cases {
		if i > 0 {
			line(map[string]any{"connect": pmdCaseURL(tetherURL, cs), "flags": cs.peer.flags()})
		}
		for _, m := range msgs {
			if m.typ == tether.Binary {
				line(map[string]string{"type": "binary", "data": base64.StdEncoding.EncodeToString(m.p)})
			} else {
				line(map[string]string{"type": "text", "data": string(m.p)})
			}
		}
	}
	return b.String()
}

// pmdCaseURL is the Tether server's URL for cs: the server picks its
// options by the variant parameter.
func pmdCaseURL(tetherURL string, cs pmdCase) string {
	return tetherURL + "/echo?variant=" + url.QueryEscape(cs.name)
}

// pmdCaseNamed returns the case called name.
func pmdCaseNamed(name string) pmdCase {
	for _, cs := range pmdCases {
		if cs.name == name {
			return cs
		}
	}
	panic("no case " + name)
}

// pmdArgv is the command line of p's deflate peer in role "server" or
// "client" (with url).
func pmdArgv(p *peer, role, url string, flags []string) []string {
	var argv []string
	switch p.name {
	case "python":
		argv = []string{pythonBin, "py_deflate.py", role}
	case "node":
		argv = []string{nodeBin, filepath.Join("node", "deflate.js"), role}
	default:
		panic("no deflate peer for " + p.name)
	}
	if url != "" {
		argv = append(argv, url)
	}
	return append(argv, flags...)
}

// pmdResponse is p's server's answer to offer.
func pmdResponse(p *peer, c pmdPeer, offer *pmdParams) *pmdParams {
	if p.name == "python" {
		return pythonResponse(c, offer)
	}
	return nodeResponse(c, offer)
}

var extLineRE = regexp.MustCompile(`^ext (.+)$`)

// pmdShared is a peer process that every case of a run uses in turn (one
// process per peer and role keeps the run short: starting python or node
// costs a second on a loaded machine). Its output is read in step; once a
// case fails halfway, later cases cannot trust it.
type pmdShared struct {
	*proc
	inStep bool
}

// use fails t at once if the process is out of step, and marks it so if t
// fails before calling the returned function, once it has read all the
// lines of its case.
func (s *pmdShared) use(t *testing.T) (read func()) {
	t.Helper()
	if !s.inStep {
		t.Fatalf("%s: output out of step after an earlier failure", s.name)
	}
	done := false
	t.Cleanup(func() {
		if t.Failed() && !done {
			s.inStep = false
		}
	})
	return func() { done = true }
}

// skipCase reads the output of a connection no test looks at: up to its
// "closed" or "error" line.
func (s *pmdShared) skipCase(t *testing.T) {
	t.Helper()
	for {
		if l := s.line(t); strings.HasPrefix(l, "closed ") || strings.HasPrefix(l, "error ") {
			return
		}
	}
}

// TestCompressPeers runs every configuration in both directions with both
// peers: a Tether client against the peer's server (which takes each case's
// flags from the URL), and the peer's client against a Tether server (which
// takes each case's options from the URL), one connection per case and
// direction.
func TestCompressPeers(t *testing.T) {
	t.Parallel() // alongside TestBrowserCompress
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			requirePeer(t, p)
			msgs := pmdMsgs()
			srv := &pmdShared{startProc(t, p.name+" deflate server", nil, pmdArgv(p, "server", "", nil)...), true}
			port := listeningRE.FindStringSubmatch(srv.expectMatch(t, listeningRE))[1]
			ts := startPMDServer(t, func(r *http.Request) pmdTether { return pmdCaseNamed(r.URL.Query().Get("variant")).tether }, nil)
			first := pmdCases[0]
			cl := &pmdShared{startProc(t, p.name+" deflate client", strings.NewReader(pmdScript(ts.url, pmdCases, msgs)),
				pmdArgv(p, "client", pmdCaseURL(ts.url, first), first.peer.flags())...), true}
			for _, cs := range pmdCases {
				ran := false
				t.Run(cs.name, func(t *testing.T) {
					t.Run("tether_client", func(t *testing.T) {
						pmdTetherClient(t, p, cs, srv.proc, srv.use(t), "ws://127.0.0.1:"+port+"/echo")
					})
					t.Run("tether_server", func(t *testing.T) {
						ran = true
						pmdTetherServer(t, p, cs, cl.proc, cl.use(t), ts)
					})
				})
				if !ran && cl.inStep {
					cl.skipCase(t) // left out by -run: the client runs it all the same
				}
				if t.Failed() && !cl.inStep && !srv.inStep {
					break
				}
			}
			if cl.inStep {
				cl.expectExit(t)
			}
		})
	}
}

// pmdTetherClient: a Tether client against p's server at url.
func pmdTetherClient(t *testing.T, p *peer, cs pmdCase, srv *proc, read func(), serverURL string) {
	logs := &syncBuffer{}
	dumpLogsOnFailure(t, "tether client", logs)
	rec := &pmdWire{}
	opts := dialOptions(logs)
	opts.ReadLimit = 16 << 20
	cs.tether.apply(&opts.ConnOptions)
	opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rec.wrap(nc), nil
	}
	c := dial(t, serverURL+"?flags="+url.QueryEscape(strings.Join(cs.peer.flags(), ",")), opts)
	peerExt := extLineRE.FindStringSubmatch(srv.expectMatch(t, extLineRE))[1]

	ctx := testContext(t)
	msgs := pmdMsgs()
	for i, m := range msgs {
		if err := pmdSend(ctx, c, m); err != nil {
			t.Fatalf("message %d (%v, %d bytes, %s): %v", i, m.typ, len(m.p), m.how, err)
		}
		checkEcho(t, c, m.typ, m.p)
	}
	closeCleanly(t, c, tether.StatusNormal, "bye")
	srv.expect(t, "closed 1000 bye")
	read()

	offer := tetherOffer(cs.tether)
	want := pmdResponse(p, cs.peer, offer)
	pmdCheckAgreed(t, offer, want, map[string]string{"tether client": c.Extensions(), p.name + " server": peerExt})
	pmdCheckWire(t, rec, msgs, want, cs.tether, false)
}

// pmdTetherServer: p's client (cl, running the script) against ts, for cs.
func pmdTetherServer(t *testing.T, p *peer, cs pmdCase, cl *proc, read func(), ts *pmdServer) {
	msgs := pmdMsgs()
	peerExt := extLineRE.FindStringSubmatch(cl.expectMatch(t, extLineRE))[1]
	for _, m := range msgs {
		cl.expect(t, recvLine(m.typ, m.p))
	}
	cl.expect(t, "closed 1000 bye")
	read()

	res := ts.resultFor(t, cs.name)
	res.check(t, msgs, 1000, "bye")
	offer := peerOffer(cs.peer)
	if got, err := parsePMD(res.offer); err != nil || got == nil || *got != *offer {
		t.Errorf("%s client offered %q, want %q (%v)", p.name, res.offer, offer, err)
	}
	want := tetherResponse(cs.tether, offer)
	pmdCheckAgreed(t, offer, want, map[string]string{"tether server": res.ext, p.name + " client": peerExt})
	pmdCheckWire(t, res.wire, msgs, want, cs.tether, true)
}

// pmdCheckAgreed checks that want is a valid RFC 7692 answer to offer and
// that every end reports it.
func pmdCheckAgreed(t *testing.T, offer, want *pmdParams, ends map[string]string) {
	t.Helper()
	if err := pmdRFCCheck(offer, want); err != nil {
		t.Fatalf("test bug: expected answer %q to %q: %v", want, offer, err)
	}
	var seen []string
	for end, v := range ends {
		seen = append(seen, fmt.Sprintf("%s %q", end, v))
		got, err := parsePMD(v)
		switch {
		case err != nil:
			t.Errorf("%s reports %q: %v", end, v, err)
		case (got == nil) != (want == nil) || (got != nil && *got != *want):
			t.Errorf("%s reports %q, want %q (offer %q)", end, v, want, offer)
		}
	}
	t.Logf("offer %q, agreed %q; %s", offer, want, strings.Join(seen, ", "))
}

// pmdCheckWire checks the data messages recorded on Tether's connection:
// msgs[i] went one way and its echo came back, so Tether sent and received
// each of them once, in order. tetherServer tells Tether's role; resp is
// what was agreed (nil: no compression).
func pmdCheckWire(t *testing.T, rec *pmdWire, msgs []pmdMsg, resp *pmdParams, tc pmdTether, tetherServer bool) {
	t.Helper()
	sent, rcvd := rec.messages()
	for _, dir := range []struct {
		name     string
		got      []pmdWireMsg
		server   bool              // the sender is the server
		tether   bool              // the sender is Tether
		compress func(pmdMsg) bool // whether the sender compresses m
		takeover func(noCtx bool) bool
	}{
		{"sent by tether", sent, tetherServer, true, tc.compresses, func(noCtx bool) bool { return tc.takeover() && !noCtx }},
		{"sent by the peer", rcvd, !tetherServer, false, func(pmdMsg) bool { return true }, func(noCtx bool) bool { return !noCtx }},
	} {
		if len(dir.got) != len(msgs) {
			t.Errorf("%s: %d data messages on the wire, want %d", dir.name, len(dir.got), len(msgs))
			continue
		}
		var plain, wire int
		for i, m := range msgs {
			g := dir.got[i]
			what := fmt.Sprintf("%s: message %d (%v, %d bytes, %s)", dir.name, i, m.typ, len(m.p), m.how)
			plain, wire = plain+len(m.p), wire+len(g.payload)
			if tether.MessageType(g.op) != m.typ {
				t.Errorf("%s: opcode %d", what, g.op)
			}
			if frag := tc.fragment; dir.tether && frag > 0 && (g.maxFrame > frag || g.frames < (len(g.payload)+frag-1)/frag) {
				t.Errorf("%s: %d bytes in %d frames of up to %d bytes, want frames of at most FragmentSize %d", what, len(g.payload), g.frames, g.maxFrame, frag)
			}
			wantRsv1 := resp != nil && (!dir.tether || dir.compress(m))
			if g.rsv1 != wantRsv1 {
				t.Errorf("%s: RSV1 %t, want %t (agreed %q)", what, g.rsv1, wantRsv1, resp)
				continue
			}
			if !g.rsv1 {
				if !bytes.Equal(g.payload, m.p) {
					t.Errorf("%s: uncompressed payload differs from the message", what)
				}
				continue
			}
			bits, noCtx := pmdSender(resp, dir.server)
			refs, err := pmdInflateRefs(g.payload)
			switch {
			case err != nil:
				t.Errorf("%s: bad DEFLATE data: %v", what, err)
				continue
			case refs.n != len(m.p):
				t.Errorf("%s: inflates to %d bytes", what, refs.n)
			case refs.maxDist > 1<<bits:
				t.Errorf("%s: a back-reference %d bytes back, beyond the agreed window of %d (agreed %q)", what, refs.maxDist, 1<<bits, resp)
			case !dir.takeover(noCtx) && refs.back:
				t.Errorf("%s: refers back into earlier messages without context takeover (agreed %q, Tether mode %v)", what, resp, tc.mode)
			}
			if len(m.p) >= 1<<10 && len(g.payload) > len(m.p)/2 {
				t.Errorf("%s: compressed to %d bytes only", what, len(g.payload))
			}
			if i == pmdProbe && dir.takeover(noCtx) && 1<<bits >= 2*len(m.p) && !refs.back {
				t.Errorf("%s: the second copy of a message does not refer back into the first, with context takeover and a window of %d (agreed %q, %d then %d bytes)",
					what, 1<<bits, resp, len(dir.got[i-1].payload), len(g.payload))
			}
		}
		t.Logf("%s: %d messages, %d bytes, %d on the wire; probe %d then %d bytes", dir.name, len(msgs), plain, wire,
			len(dir.got[pmdProbe-1].payload), len(dir.got[pmdProbe].payload))
	}
}

// pmdServer is an httptest server whose /echo runs a Tether server
// connection with compression options chosen per request, echoing message i
// the way pmdMsgs()[i].how says, over a listener that records every TCP
// connection (pmdWire).
type pmdServer struct {
	url     string // ws://127.0.0.1:PORT
	logs    *syncBuffer
	results chan *pmdResult
	done    map[string]*pmdResult // results taken from the channel, by variant
	wg      sync.WaitGroup
}

// pmdResult is how one server connection went.
type pmdResult struct {
	variant  string   // the "variant" query parameter
	offer    string   // the request's Sec-WebSocket-Extensions
	ext      string   // Conn.Extensions()
	msgs     []string // recvLine per message received
	data     [][]byte // the messages received
	readErr  error
	writeErr error
	wire     *pmdWire
}

// check: the connection received msgs and ended with the peer's close.
func (r *pmdResult) check(t *testing.T, msgs []pmdMsg, code tether.StatusCode, reason string) {
	t.Helper()
	var want []string
	for _, m := range msgs {
		want = append(want, recvLine(m.typ, m.p))
	}
	if strings.Join(r.msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("server received:\n%s\nwant:\n%s", strings.Join(r.msgs, "\n"), strings.Join(want, "\n"))
	}
	if r.writeErr != nil {
		t.Errorf("server echo: %v", r.writeErr)
	}
	ce := checkCloseError(t, "server Read", r.readErr, code, reason, "peer")
	checkFrame(t, "CloseError.Rcvd", ce.Rcvd, code, reason)
}

// startPMDServer starts the server; page, if not nil, serves every path but
// /echo.
func startPMDServer(t *testing.T, config func(*http.Request) pmdTether, page http.Handler) *pmdServer {
	t.Helper()
	ts := &pmdServer{logs: &syncBuffer{}, results: make(chan *pmdResult, 16), done: map[string]*pmdResult{}}
	dumpLogsOnFailure(t, "tether server", ts.logs)
	ctx, cancel := context.WithCancel(context.Background())
	lis := &pmdListener{conns: map[string]*pmdWire{}}
	mux := http.NewServeMux()
	if page != nil {
		mux.Handle("/", page)
	}
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		ts.wg.Add(1)
		defer ts.wg.Done()
		opts := &tether.AcceptOptions{ConnOptions: tether.ConnOptions{
			ReadLimit:    16 << 20,
			PingInterval: -1,
			CloseTimeout: 5 * time.Second,
			Logger:       newLogger(ts.logs),
		}}
		config(r).apply(&opts.ConnOptions)
		res := &pmdResult{
			variant: r.URL.Query().Get("variant"),
			offer:   strings.Join(r.Header.Values("Sec-WebSocket-Extensions"), ", "),
			wire:    lis.lookup(r.RemoteAddr),
		}
		c, err := tether.Accept(w, r, opts)
		if err != nil {
			res.readErr = err
		} else {
			defer c.CloseNow()
			res.ext = c.Extensions()
			msgs := pmdMsgs()
			for i := 0; ; i++ {
				typ, p, err := c.Read(ctx)
				if err != nil {
					res.readErr = err
					break
				}
				res.msgs = append(res.msgs, recvLine(typ, p))
				res.data = append(res.data, append([]byte(nil), p...))
				m := pmdMsg{typ, p, "write"}
				if i < len(msgs) {
					m.how = msgs[i].how
				}
				if err := pmdSend(ctx, c, m); err != nil {
					res.writeErr = err
					break
				}
			}
		}
		select {
		case ts.results <- res:
		case <-ctx.Done():
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	lis.Listener = srv.Listener
	srv.Listener = lis
	srv.Start()
	ts.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		cancel()
		srv.Close()
		done := make(chan struct{})
		go func() { ts.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(lineTimeout):
			t.Errorf("tether server handlers still running %v after the test", lineTimeout)
		}
	})
	return ts
}

// resultFor waits for the server connection of the given variant to end.
func (ts *pmdServer) resultFor(t *testing.T, variant string) *pmdResult {
	t.Helper()
	deadline := time.After(lineTimeout)
	for {
		if r := ts.done[variant]; r != nil {
			delete(ts.done, variant)
			return r
		}
		select {
		case r := <-ts.results:
			ts.done[r.variant] = r
		case <-deadline:
			t.Fatalf("tether server: no %q connection ended within %v", variant, lineTimeout)
			return nil
		}
	}
}

// pmdListener records every accepted connection, by remote address.
type pmdListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[string]*pmdWire
}

func (l *pmdListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rec := &pmdWire{}
	l.mu.Lock()
	l.conns[nc.RemoteAddr().String()] = rec
	l.mu.Unlock()
	return rec.wrap(nc), nil
}

func (l *pmdListener) lookup(remote string) *pmdWire {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec := l.conns[remote]; rec != nil {
		return rec
	}
	return &pmdWire{} // not seen: checks will find no messages
}

// pmdWire records the WebSocket data messages that cross one TCP
// connection in each direction, as they are on the wire: RSV1 and the
// (unmasked) payload of all their frames.
type pmdWire struct {
	mu         sync.Mutex
	sent, rcvd pmdStream
}

type pmdWireMsg struct {
	op       byte
	rsv1     bool
	frames   int
	maxFrame int // the largest frame's payload
	payload  []byte
}

func (w *pmdWire) wrap(nc net.Conn) net.Conn { return &pmdConn{Conn: nc, rec: w} }

func (w *pmdWire) feed(sent bool, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sent {
		w.sent.feed(p)
	} else {
		w.rcvd.feed(p)
	}
}

// messages returns the complete data messages sent and received so far.
func (w *pmdWire) messages() (sent, rcvd []pmdWireMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]pmdWireMsg(nil), w.sent.msgs...), append([]pmdWireMsg(nil), w.rcvd.msgs...)
}

// pmdStream parses one direction: the HTTP head, then frames.
type pmdStream struct {
	headDone bool
	broken   bool
	buf      []byte
	cur      *pmdWireMsg
	msgs     []pmdWireMsg
}

func (s *pmdStream) feed(p []byte) {
	if s.broken {
		return
	}
	s.buf = append(s.buf, p...)
	if !s.headDone {
		i := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		s.headDone = true
		s.buf = s.buf[i+4:]
	}
	for {
		b := s.buf
		if len(b) < 2 {
			return
		}
		need, n := 2, int(b[1]&0x7f)
		switch n {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		masked := b[1]&0x80 != 0
		if masked {
			need += 4
		}
		if len(b) < need {
			return
		}
		switch n {
		case 126:
			n = int(b[2])<<8 | int(b[3])
		case 127:
			var u uint64
			for _, c := range b[2:10] {
				u = u<<8 | uint64(c)
			}
			if u > 1<<30 {
				s.broken = true // not WebSocket framing (a plain HTTP connection)
				s.buf = nil
				return
			}
			n = int(u)
		}
		if len(b) < need+n {
			return
		}
		payload := append([]byte(nil), b[need:need+n]...)
		if masked {
			key := b[need-4 : need]
			for i := range payload {
				payload[i] ^= key[i&3]
			}
		}
		s.frame(b[0], payload)
		s.buf = append(s.buf[:0], b[need+n:]...)
	}
}

func (s *pmdStream) frame(b0 byte, payload []byte) {
	fin, op := b0&0x80 != 0, b0&0x0f
	switch {
	case op == 1 || op == 2:
		s.cur = &pmdWireMsg{op: op, rsv1: b0&0x40 != 0}
	case op != 0 || s.cur == nil:
		return // control frame, or a stray continuation
	}
	s.cur.frames++
	s.cur.maxFrame = max(s.cur.maxFrame, len(payload))
	s.cur.payload = append(s.cur.payload, payload...)
	if fin {
		s.msgs = append(s.msgs, *s.cur)
		s.cur = nil
	}
}

// pmdConn feeds everything read and written into its pmdWire.
type pmdConn struct {
	net.Conn
	rec *pmdWire
}

func (c *pmdConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.feed(false, p[:n])
	return n, err
}

func (c *pmdConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.rec.feed(true, p[:n])
	return n, err
}

// CloseWrite keeps Tether's half-close working through the wrapper.
func (c *pmdConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// pmdRefs is what a compressed message's DEFLATE stream refers to.
type pmdRefs struct {
	n       int  // bytes it inflates to
	maxDist int  // the longest back-reference distance
	back    bool // some back-reference reaches before the message's start
}

// pmdInflateRefs walks a permessage-deflate payload (RFC 7692 section 7.2.2:
// the tail 00 00 ff ff stripped) as RFC 1951 blocks without producing
// output: it only counts the positions, so it needs no history, and reports
// every back-reference's distance. It accepts what zlib accepts and nothing
// else.
func pmdInflateRefs(payload []byte) (pmdRefs, error) {
	var r pmdRefs
	in := append(append([]byte(nil), payload...), 0x00, 0x00, 0xff, 0xff)
	br := &pmdBitReader{data: in}
	for {
		final, err := br.bits(1)
		if err != nil {
			return r, err
		}
		typ, err := br.bits(2)
		if err != nil {
			return r, err
		}
		switch typ {
		case 0:
			br.bit, br.nbit = 0, 0 // to the byte boundary
			if br.pos+4 > len(in) {
				return r, errors.New("stored block header cut short")
			}
			n := int(in[br.pos]) | int(in[br.pos+1])<<8
			if nn := int(in[br.pos+2]) | int(in[br.pos+3])<<8; n != nn^0xffff {
				return r, errors.New("stored block length mismatch")
			}
			br.pos += 4
			if br.pos+n > len(in) {
				return r, errors.New("stored block cut short")
			}
			br.pos += n
			r.n += n
		case 1:
			err = r.codes(br, pmdFixedLit, pmdFixedDist)
		case 2:
			var lit, dist *pmdHuffman
			if lit, dist, err = pmdDynamic(br); err == nil {
				err = r.codes(br, lit, dist)
			}
		default:
			return r, errors.New("reserved block type")
		}
		if err != nil {
			return r, err
		}
		if final == 1 || (br.pos == len(in) && br.nbit == 0) {
			return r, nil
		}
	}
}

var (
	pmdLenBase   = [...]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	pmdLenExtra  = [...]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	pmdDistBase  = [...]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	pmdDistExtra = [...]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	pmdFixedLit, pmdFixedDist = func() (*pmdHuffman, *pmdHuffman) {
		var l [288]int
		for i := range l {
			switch {
			case i < 144:
				l[i] = 8
			case i < 256:
				l[i] = 9
			case i < 280:
				l[i] = 7
			default:
				l[i] = 8
			}
		}
		var d [30]int
		for i := range d {
			d[i] = 5
		}
		return pmdNewHuffman(l[:]), pmdNewHuffman(d[:])
	}()
)

// codes walks one Huffman-coded block.
func (r *pmdRefs) codes(br *pmdBitReader, lit, dist *pmdHuffman) error {
	for {
		sym, err := lit.decode(br)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			r.n++
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("bad length symbol %d", sym)
		}
		sym -= 257
		extra, err := br.bits(pmdLenExtra[sym])
		if err != nil {
			return err
		}
		length := pmdLenBase[sym] + extra
		ds, err := dist.decode(br)
		if err != nil {
			return err
		}
		if ds >= 30 {
			return fmt.Errorf("bad distance symbol %d", ds)
		}
		if extra, err = br.bits(pmdDistExtra[ds]); err != nil {
			return err
		}
		d := pmdDistBase[ds] + extra
		r.maxDist = max(r.maxDist, d)
		if d > r.n {
			r.back = true
		}
		r.n += length
	}
}

// pmdDynamic reads a dynamic block's code tables.
func pmdDynamic(br *pmdBitReader) (lit, dist *pmdHuffman, err error) {
	var hdr [3]int
	for i, n := range []uint{5, 5, 4} {
		if hdr[i], err = br.bits(n); err != nil {
			return nil, nil, err
		}
	}
	nlit, ndist, nclen := hdr[0]+257, hdr[1]+1, hdr[2]+4
	if nlit > 286 || ndist > 30 {
		return nil, nil, errors.New("too many codes")
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]int
	for i := range nclen {
		if cl[order[i]], err = br.bits(3); err != nil {
			return nil, nil, err
		}
	}
	clh := pmdNewHuffman(cl[:])
	lengths := make([]int, nlit+ndist)
	for i := 0; i < len(lengths); {
		sym, err := clh.decode(br)
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		val, nbits, base := 0, uint(3), 11
		switch sym {
		case 16:
			if i == 0 {
				return nil, nil, errors.New("repeat with no previous length")
			}
			val, nbits, base = lengths[i-1], 2, 3
		case 17:
			nbits, base = 3, 3
		case 18:
			nbits, base = 7, 11
		}
		rep, err := br.bits(nbits)
		if err != nil {
			return nil, nil, err
		}
		if i+base+rep > len(lengths) {
			return nil, nil, errors.New("code lengths overflow")
		}
		for range base + rep {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return nil, nil, errors.New("no end-of-block code")
	}
	return pmdNewHuffman(lengths[:nlit]), pmdNewHuffman(lengths[nlit:]), nil
}

// pmdHuffman is a canonical Huffman code, decoded bit by bit (as zlib's
// puff.c does).
type pmdHuffman struct {
	count  [16]int
	symbol []int
}

func pmdNewHuffman(lengths []int) *pmdHuffman {
	h := &pmdHuffman{symbol: make([]int, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h
}

func (h *pmdHuffman) decode(br *pmdBitReader) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := br.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		if count := h.count[l]; code-first < count {
			return h.symbol[index+code-first], nil
		}
		index += h.count[l]
		first = (first + h.count[l]) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

// pmdBitReader reads DEFLATE's LSB-first bits.
type pmdBitReader struct {
	data []byte
	pos  int
	bit  uint32
	nbit uint
}

func (br *pmdBitReader) bits(n uint) (int, error) {
	for br.nbit < n {
		if br.pos >= len(br.data) {
			return 0, errors.New("DEFLATE stream cut short")
		}
		br.bit |= uint32(br.data[br.pos]) << br.nbit
		br.pos++
		br.nbit += 8
	}
	v := br.bit & (1<<n - 1)
	br.bit >>= n
	br.nbit -= n
	return int(v), nil
}

// TestCompressInflateRefs checks pmdInflateRefs on streams of the
// standard library's compress/flate, whose references are known: a message
// alone refers to nothing before it; the same message with itself as the
// dictionary (as context takeover gives) refers back exactly one copy.
func TestCompressInflateRefs(t *testing.T) {
	msg := jsonLike(4<<10, 42)
	for _, dict := range [][]byte{nil, msg} {
		var b bytes.Buffer
		w, err := flate.NewWriterDict(&b, flate.BestCompression, dict)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(msg)
		w.Flush()
		payload, ok := bytes.CutSuffix(b.Bytes(), []byte{0x00, 0x00, 0xff, 0xff})
		if !ok {
			t.Fatal("no sync marker")
		}
		refs, err := pmdInflateRefs(payload)
		if err != nil {
			t.Fatalf("dict %d bytes: %v", len(dict), err)
		}
		if refs.n != len(msg) || refs.back != (dict != nil) || (dict != nil && refs.maxDist != len(msg)) || refs.maxDist > len(msg) {
			t.Errorf("dict %d bytes: %+v, want n %d, back %t", len(dict), refs, len(msg), dict != nil)
		}
	}
	for _, bad := range [][]byte{{0xff, 0xff}, {0x07}, {0x00, 0x05, 0x00}} {
		if refs, err := pmdInflateRefs(bad); err == nil {
			t.Errorf("%x accepted: %+v", bad, refs)
		}
	}
}

// TestCompressWindowBits8: with CompressionWindowBits 8, Tether asks the peer
// for 9 bits, not 8: zlib cannot build a raw deflate compressor with an
// 8-bit window (madler/zlib#171), and python-websockets 10.4 failed the
// handshake both ways when asked for 8 (its server answered 500, its client
// raised "ValueError: Invalid initialization option").
func TestCompressWindowBits8(t *testing.T) {
	t.Parallel()
	cs := pmdCase{"window_8", pmdPeer{}, pmdTether{mode: tether.CompressionContextTakeover, bits: 8, threshold: -1}}
	forEachPeer(t, func(t *testing.T, p *peer) {
		msgs := pmdMsgs()
		t.Run("tether_client", func(t *testing.T) {
			srv := startProc(t, p.name+" deflate server", nil, pmdArgv(p, "server", "", nil)...)
			port := listeningRE.FindStringSubmatch(srv.expectMatch(t, listeningRE))[1]
			pmdTetherClient(t, p, cs, srv, func() {}, "ws://127.0.0.1:"+port+"/echo")
		})
		t.Run("tether_server", func(t *testing.T) {
			ts := startPMDServer(t, func(*http.Request) pmdTether { return cs.tether }, nil)
			cl := startProc(t, p.name+" deflate client", strings.NewReader(pmdScript(ts.url, []pmdCase{cs}, msgs)),
				pmdArgv(p, "client", pmdCaseURL(ts.url, cs), cs.peer.flags())...)
			pmdTetherServer(t, p, cs, cl, func() {}, ts)
			cl.expectExit(t)
		})
	})
}
