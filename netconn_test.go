package tether

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// netPair returns the two ends of a pair as byte streams of typ.
func netPair(t *testing.T, typ MessageType) (client, server net.Conn, cc, sc *Conn) {
	t.Helper()
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	cc, sc = pair(t, opts, opts)
	return NetConn(context.Background(), cc, typ), NetConn(context.Background(), sc, typ), cc, sc
}

// TestNetConnBothClose: both ends closing at once, after a stream went one
// way, is a clean end for both: no error from either Close.
func TestNetConnBothClose(t *testing.T) {
	client, server, _, _ := netPair(t, Binary)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	done := make(chan error, 1)
	go func() {
		_, err := client.Write(data)
		if err == nil {
			err = client.Close()
		}
		done <- err
	}()
	got, err := io.ReadAll(server)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server read %d bytes, %v; want %d and EOF", len(got), err, len(data))
	}
	if err := server.Close(); err != nil {
		t.Errorf("server Close after the client's: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("client Write and Close: %v", err)
	}
}

// TestNetConnCloseUnblocks: Close ends a Read blocked on a silent peer, and
// calls of every method at once are race-free (run with -race).
func TestNetConnCloseUnblocks(t *testing.T) {
	client, server, _, _ := netPair(t, Binary)
	go io.Copy(io.Discard, server)
	errs := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		errs <- err
	}()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { client.Write([]byte("x")) })
		wg.Go(func() { client.SetDeadline(time.Now().Add(time.Hour)) })
		wg.Go(func() { client.SetWriteDeadline(time.Time{}) })
		wg.Go(func() { _ = client.LocalAddr().String() + client.RemoteAddr().String() })
	}
	wg.Wait()
	client.Close()
	if err := <-errs; !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
		t.Fatalf("Read blocked during Close: %v, want net.ErrClosed or EOF", err)
	}
}

// TestNetConnStream: bytes written in several messages read back as one
// stream, whatever the reader's buffer size, both ways at once.
func TestNetConnStream(t *testing.T) {
	client, server, _, _ := netPair(t, Binary)
	data := make([]byte, 300<<10)
	rand.Read(data)
	go func() {
		for p := data; len(p) > 0; {
			n := min(len(p), 7777)
			if _, err := client.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}()
	go io.Copy(server, server) // echo
	got := make([]byte, len(data))
	if _, err := io.ReadFull(bufio.NewReaderSize(client, 100), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the stream came back changed")
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

// TestNetConnEOF: a normal close from the peer reads as io.EOF, after the
// bytes sent before it.
func TestNetConnEOF(t *testing.T) {
	client, server, _, sc := netPair(t, Text)
	if _, err := server.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	go sc.Close(StatusNormal, "")
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "last words" {
		t.Fatalf("ReadAll: %q, %v; want the last words and EOF", got, err)
	}
}

// TestNetConnDeadline: a read deadline that passes while Read waits fails
// it with a timeout, and the connection stays usable once it is moved.
func TestNetConnDeadline(t *testing.T) {
	client, server, cc, _ := netPair(t, Binary)
	errs := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		errs <- err
	}()
	client.SetReadDeadline(time.Now().Add(-time.Second))
	err := <-errs
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past its deadline: %v, want a timeout", err)
	}
	client.SetReadDeadline(time.Time{})
	if _, err := server.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("Read after moving the deadline: %q %v", buf, err)
	}
	if cc.Err() != nil {
		t.Fatalf("the read timeout ended the connection: %v", cc.Err())
	}
	// A write whose deadline has passed sends nothing and harms nothing.
	client.SetWriteDeadline(time.Now().Add(-time.Second))
	if n, err := client.Write([]byte("late")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %d, %v; want 0 and a timeout", n, err)
	}
	client.SetWriteDeadline(time.Time{})
	if _, err := client.Write([]byte("in time")); err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 7)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "in time" {
		t.Fatalf("server read %q %v, want only the write made in time", buf, err)
	}
}

// TestNetConnWrongType: a message of the other type breaks the stream: the
// reader fails and the peer sees 1003.
func TestNetConnWrongType(t *testing.T) {
	client, _, cc, sc := netPair(t, Binary)
	if err := sc.Write(context.Background(), Text, []byte("not bytes")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read of a text message in a binary stream succeeded")
	}
	<-cc.Done()
	var ce *CloseError
	if _, _, err := sc.Read(context.Background()); !errors.As(err, &ce) || ce.Code != StatusUnsupportedData {
		t.Fatalf("peer read %v, want 1003", err)
	}
}

// TestNetConnContext: ending the net.Conn's context closes the connection
// with 1001 and fails a blocked Read with the context's error.
func TestNetConnContext(t *testing.T) {
	opts := ConnOptions{PingInterval: -1, Registry: NoRegistry, Logger: discard}
	cc, sc := pair(t, opts, opts)
	ctx, cancel := context.WithCancel(context.Background())
	client := NetConn(ctx, cc, Binary)
	errs := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		errs <- err
	}()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the context ended: %v", err)
	}
	var ce *CloseError
	if _, _, err := sc.Read(context.Background()); !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Initiator != "peer" {
		t.Fatalf("peer read %v, want 1001 from the client", err)
	}
}
