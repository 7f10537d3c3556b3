package tether

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// shutdownServer starts a server whose connections register in reg and wait
// for their end without reading; CloseTimeout is long, so only Shutdown's
// deadline can cut a closing handshake short.
func shutdownServer(t *testing.T, reg *Registry) (addr string, accepted <-chan *Conn) {
	t.Helper()
	ch := make(chan *Conn, 256)
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: -1,
			CloseTimeout: time.Minute, Logger: discard}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ch <- c
		<-c.Done()
	}))
	t.Cleanup(func() {
		srv.Close()
		reg.Shutdown(cancelled(), StatusGoingAway, "")
		wg.Wait()
	})
	return srv.Listener.Addr().String(), ch
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// silentPeer opens a WebSocket connection by hand and then never reads or
// writes: the server's close frame is never answered.
func silentPeer(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET /silent HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return nc
}

// TestShutdownClosesServerConns: every server connection gets 1001 and the
// reason, the handshakes complete, Shutdown returns nil, and the client
// connections listed in the same registry stay open.
func TestShutdownClosesServerConns(t *testing.T) {
	reg := NewRegistry()
	reg.Logger = discard
	addr, accepted := shutdownServer(t, reg)
	n := 200
	if raceEnabled {
		n = 50
	}
	ctx := context.Background()
	clients := make([]*Conn, n)
	for i := range clients {
		c, _, err := Dial(ctx, "ws://"+addr+"/s", &DialOptions{FanOut: true,
			ConnOptions: ConnOptions{Registry: NoRegistry, PingInterval: -1, Logger: discard}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients[i] = c
		<-accepted
	}
	// A client connection in the same registry: not the server's to close.
	other := echoServer(t, &AcceptOptions{ConnOptions: ConnOptions{Registry: NoRegistry, Logger: discard, PingInterval: -1}})
	own, _, err := Dial(ctx, other, &DialOptions{ConnOptions: ConnOptions{Registry: reg, PingInterval: -1, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer own.CloseNow()

	if err := reg.Shutdown(ctx, StatusGoingAway, "server shutting down"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		_, _, err := c.Read(ctx)
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Reason != "server shutting down" || ce.Initiator != "peer" {
			t.Fatalf("client %d: %v, want a 1001 from the server", i, err)
		}
	}
	if reg.Len() != 1 || own.Err() != nil {
		t.Fatalf("registry holds %d connections after shutdown (own err %v), want only the client", reg.Len(), own.Err())
	}
}

// TestShutdownDropsAtDeadline: a peer that never answers the close frame
// keeps its connection closing until ctx ends; then it is dropped and
// counted, while the others closed cleanly.
func TestShutdownDropsAtDeadline(t *testing.T) {
	reg := NewRegistry()
	reg.Logger = discard
	addr, accepted := shutdownServer(t, reg)
	good, _, err := Dial(context.Background(), "ws://"+addr+"/good", &DialOptions{ConnOptions: ConnOptions{Registry: NoRegistry, PingInterval: -1, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer good.CloseNow()
	goodSrv := <-accepted
	silentPeer(t, addr)
	stuck := <-accepted

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- reg.Shutdown(ctx, StatusGoingAway, "bye") }()
	eventually(t, "the stuck connection closing", func() bool { return stuck.Stats().State == "closing" })
	<-goodSrv.Done()
	select {
	case err := <-errc:
		t.Fatalf("Shutdown returned %v before its deadline, with a handshake pending", err)
	default:
	}
	cancel()
	err = <-errc
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 connections dropped") {
		t.Fatalf("Shutdown returned %v", err)
	}
	var ce *CloseError
	if !errors.As(stuck.Err(), &ce) || ce.Code != StatusAbnormal || ce.Rcvd != nil {
		t.Fatalf("stuck connection ended with %v, want dropped (1006)", stuck.Err())
	}
	if !errors.As(goodSrv.Err(), &ce) || ce.Code != StatusGoingAway || ce.Rcvd == nil {
		t.Fatalf("good connection ended with %v, want a completed 1001 handshake", goodSrv.Err())
	}
	if reg.Len() != 0 {
		t.Fatalf("registry holds %d connections", reg.Len())
	}
}

// TestShutdownLateRegistration: a server connection that registers while
// Shutdown waits for others is closed too.
func TestShutdownLateRegistration(t *testing.T) {
	reg := NewRegistry()
	reg.Logger = discard
	addr, accepted := shutdownServer(t, reg)
	peer := silentPeer(t, addr)
	first := <-accepted

	errc := make(chan error, 1)
	go func() { errc <- reg.Shutdown(context.Background(), StatusGoingAway, "bye") }()
	eventually(t, "the first connection closing", func() bool { return first.Stats().State == "closing" })
	late, _, err := Dial(context.Background(), "ws://"+addr+"/late", &DialOptions{ConnOptions: ConnOptions{Registry: NoRegistry, PingInterval: -1, Logger: discard}})
	if err != nil {
		t.Fatal(err)
	}
	defer late.CloseNow()
	<-accepted
	// Now the silent peer answers, so the first batch completes.
	if _, err := peer.Write(wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpClose, Masked: true})); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, _, err := late.Read(context.Background()); CloseStatus(err) != StatusGoingAway {
		t.Fatalf("late connection read %v, want 1001", err)
	}
}

func TestShutdownArguments(t *testing.T) {
	if err := NewRegistry().Shutdown(context.Background(), StatusNoStatus, ""); err == nil {
		t.Fatal("Shutdown accepted a code that may not be sent")
	}
	if err := NoRegistry.Shutdown(context.Background(), StatusGoingAway, ""); err != nil {
		t.Fatal(err)
	}
	if err := NewRegistry().Shutdown(cancelled(), StatusGoingAway, ""); err != nil {
		t.Fatalf("empty registry: %v", err)
	}
}

func ExampleRegistry_Shutdown() {
	reg := NewRegistry()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{ConnOptions: ConnOptions{Registry: reg}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		// ... read and write ...
	})
	hs := &http.Server{Addr: "127.0.0.1:8080"}
	go hs.ListenAndServe()

	// On SIGTERM: stop accepting, then say goodbye to every client, waiting
	// up to 10 s for their answers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hs.Shutdown(ctx)
	if err := reg.Shutdown(ctx, StatusGoingAway, "server shutting down"); err != nil {
		fmt.Println(err) // how many were dropped without a closing handshake
	}
}
