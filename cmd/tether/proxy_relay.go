package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tetherws/tether"
)

// proxy relays WebSocket connections to one upstream server. Each proxied
// connection is two Tether connections, the client's (role server) and the
// upstream's (role client), in one registry: each measures its own peer's
// keepalive, and neither answers a ping: pings and pongs are forwarded.
type proxy struct {
	upstream *url.URL
	opts     tether.ConnOptions
	tls      *tls.Config
	relays   sync.WaitGroup
}

func newProxy(upstream string, opts tether.ConnOptions, tc *tls.Config) (*proxy, error) {
	u, err := parseUpstream(upstream)
	if err != nil {
		return nil, err
	}
	if opts.Registry == nil {
		opts.Registry = tether.NewRegistry()
		opts.Registry.Logger = opts.Logger
	}
	return &proxy{upstream: u, opts: opts, tls: tc}, nil
}

// leg is one side of a proxied connection; other is where its control
// frames go.
type leg struct {
	name    string // "client" or "upstream"
	conn    *tether.Conn
	control chan relayed
	pings   sync.Map // payload → time forwarded, to measure the round trip
}

type relayed struct {
	op tether.ControlOp
	p  []byte
}

func newLeg(name string) *leg { return &leg{name: name, control: make(chan relayed, 16)} }

// relay is the leg's ConnOptions.Relay: it queues the frame for the other
// side without blocking the read loop; a full queue drops it, as a lost
// ping would be on the network.
func (l *leg) relay(op tether.ControlOp, p []byte) {
	select {
	case l.control <- relayed{op, p}:
	default:
	}
}

// ServeHTTP dials the upstream first, so a refusal reaches the client as
// the upstream's own status, then accepts the client with the subprotocol
// the upstream chose, and relays.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := p.opts.Logger
	cl, up := newLeg("client"), newLeg("upstream")
	target, dopts := p.upstreamRequest(r)
	dopts.Relay = up.relay
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	uc, _, err := tether.Dial(ctx, target, dopts)
	cancel()
	if err != nil {
		status := http.StatusBadGateway
		var he *tether.HandshakeError
		if errors.As(err, &he) {
			status = he.StatusCode
		}
		log.Warn("upstream refused or unreachable", "remote", r.RemoteAddr, "upstream", target, "error", err)
		http.Error(w, "upstream: "+err.Error(), status)
		return
	}
	aopts := &tether.AcceptOptions{ConnOptions: p.opts, OriginPatterns: []string{"*"}} // the upstream judged the Origin
	aopts.Relay = cl.relay
	if sp := uc.Subprotocol(); sp != "" {
		aopts.Subprotocols = []string{sp}
	}
	cc, err := tether.Accept(w, r, aopts)
	if err != nil {
		uc.Close(tether.StatusGoingAway, "client handshake failed")
		return
	}
	cl.conn, up.conn = cc, uc
	log.Info("proxied connection", "conn", cc.ID(), "upstream_conn", uc.ID(), "upstream", target, "subprotocol", uc.Subprotocol())
	p.relays.Add(1)
	go func() {
		defer p.relays.Done()
		p.run(cl, up)
	}()
}

// run relays messages and control frames both ways until both legs end.
func (p *proxy) run(cl, up *leg) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { p.messages(cl, up) })
	wg.Go(func() { p.messages(up, cl) })
	wg.Go(func() { p.controls(cl, up, stop) })
	wg.Go(func() { p.controls(up, cl, stop) })
	<-cl.conn.Done()
	<-up.conn.Done()
	close(stop)
	wg.Wait()
}

// messages copies src's messages to dst, same type, until src ends; then
// it closes dst as src ended.
func (p *proxy) messages(src, dst *leg) {
	ctx := context.Background()
	for {
		typ, b, err := src.conn.Read(ctx)
		if err != nil {
			p.closeOther(src, dst, err)
			return
		}
		if dst.conn.Write(ctx, typ, b) != nil {
			return // dst ended: its own reader closes src
		}
	}
}

// controls forwards src's pings and pongs to dst. A forwarded ping is
// remembered, so the pong that comes back the other way is measured: the
// round trip through the proxy, both ends included.
func (p *proxy) controls(src, dst *leg, stop <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case f := <-src.control:
			if f.op == tether.ControlPing {
				dst.pings.Store(string(f.p), time.Now())
				dst.conn.WritePing(ctx, f.p)
				continue
			}
			if at, ok := src.pings.LoadAndDelete(string(f.p)); ok {
				p.opts.Logger.Debug("relayed ping answered", "conn", dst.conn.ID(), "pinger", dst.name, "rtt", time.Since(at.(time.Time)))
			}
			dst.conn.WritePong(ctx, f.p)
		case <-stop:
			return
		}
	}
}

// closeOther closes dst the way src ended: with src's peer's code, or,
// when the upstream vanished or went away, 1014 or 1012 to the client.
func (p *proxy) closeOther(src, dst *leg, err error) {
	code, reason, vanished := peerClose(err)
	if src.name == "upstream" {
		switch {
		case vanished:
			code, reason = tether.StatusBadGateway, "upstream connection lost"
		case code == tether.StatusGoingAway:
			code, reason = tether.StatusServiceRestart, "upstream going away"
		}
		if vanished || code == tether.StatusServiceRestart {
			p.opts.Logger.Warn("upstream ended: closing the client", "conn", dst.conn.ID(), "upstream_conn", src.conn.ID(), "code", int(code), "error", err)
		}
	} else if vanished {
		code, reason = tether.StatusGoingAway, "client connection lost"
	}
	dst.conn.Close(code, reason)
}

// peerClose returns the close code src's peer sent, or vanished when it
// sent none: a code that may not be sent on (1005, 1006, 1015) counts as
// none.
func peerClose(err error) (code tether.StatusCode, reason string, vanished bool) {
	var ce *tether.CloseError
	if !errors.As(err, &ce) {
		return 0, "", true
	}
	if ce.Initiator == "local" { // we closed src first, because dst ended: dst is closing already
		return ce.Code, ce.Reason, false
	}
	switch ce.Code {
	case tether.StatusNoStatus:
		return tether.StatusNormal, "", false
	case tether.StatusAbnormal, tether.StatusTLSHandshake:
		return 0, "", true
	}
	return ce.Code, ce.Reason, false
}
