package conformance

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// bugs describes each library bug the suite has found. The cases that show
// them are in knownBugs; TestBugRepro has a minimal reproduction of each.
var bugs = map[string]string{
	"BUG-1": "no fail-fast inside a frame: read.go readLoop reads a text frame's whole payload " +
		"(readPayload, io.ReadFull of h.Length bytes) before validating its UTF-8, so invalid UTF-8 " +
		"is found only when the frame's last byte arrives, not when the bad byte does",
	"BUG-2": "read.go readLoop allocates the payload length a frame header announces " +
		"(bufpool.Get(int(min(h.Length, readLimit)))) before any payload arrives: with ReadLimit -1 " +
		"a 2^62-byte header panics (makeslice: cap out of range) and kills the process; with a large " +
		"ReadLimit every 14-byte header costs up to ReadLimit of memory",
	"BUG-3": "read.go readLoop: start+h.Length overflows int64 when ReadLimit is -1 (limit MaxInt64), " +
		"so a continuation announcing 2^63-1 bytes passes the limit check and grow() panics " +
		"(slice bounds out of range) and kills the process",
}

// knownBugs maps "role/case" (or "*/case" for both roles) to the bug that
// makes the case fail. Such a case is reported as skipped, and as BUG in the
// summary, instead of failing the run; once the library is fixed it passes
// and says so, and its entry should go.
// All three bugs found when the suite was written are fixed (chunked reads
// with early UTF-8 checks, memory that follows arriving bytes, an
// overflow-safe limit check); the entries stay empty so the next one has a
// place to go.
var knownBugs = map[string]string{}

func knownBug(r role, id string) string {
	if b := knownBugs[string(r)+"/"+id]; b != "" {
		return b
	}
	return knownBugs["*/"+id]
}

// strictMode makes known bugs fail like any other case.
func strictMode() bool { return os.Getenv("TETHER_CONFORMANCE_STRICT") == "1" }

func sortedBugIDs() []string {
	var ids []string
	for id := range bugs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// TestBugRepro holds a minimal, self-contained reproduction of each bug:
// a Tether server and a few raw bytes, no suite machinery. They fail (and
// BUG-2/BUG-3 crash the test binary) until the library is fixed, so they run
// only with TETHER_CONFORMANCE_REPRO=1, one at a time:
//
//	TETHER_CONFORMANCE_REPRO=1 go test -run 'TestBugRepro/BUG-1' ./conformance/
func TestBugRepro(t *testing.T) {
	if os.Getenv("TETHER_CONFORMANCE_REPRO") != "1" {
		t.Skip("reproductions of known library bugs; set TETHER_CONFORMANCE_REPRO=1 to run them")
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}

	t.Run("BUG-1", func(t *testing.T) {
		// One masked text frame of 21 bytes; the first 15 arrive, and
		// bytes 11-14 (F4 90 80 80, above U+10FFFF) are already invalid.
		nc, br := reproConn(t, tether.ConnOptions{})
		payload := []byte(kosme + "\xf4\x90\x80\x80edited")
		frame := appendHeader(nil, Frame{Op: opText, Fin: true}, true, key, uint64(len(payload)))
		masked := append([]byte(nil), payload...)
		maskBytes(key, 0, masked)
		nc.Write(append(frame, masked[:15]...))
		nc.SetReadDeadline(time.Now().Add(time.Second))
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("no close frame within 1 s of the invalid bytes (%v): Tether waits for the rest of the frame", err)
		}
		if hdr[0] != 0x88 || binary.BigEndian.Uint16(hdr[2:]) != 1007 {
			t.Fatalf("got % x, want a close frame with 1007", hdr)
		}
	})

	t.Run("BUG-2/crash", func(t *testing.T) {
		// With no ReadLimit, a header announcing 2^62 bytes panics inside
		// Tether's read loop: this subtest ends the test binary.
		nc, _ := reproConn(t, tether.ConnOptions{ReadLimit: -1})
		nc.Write(appendHeader(nil, Frame{Op: opBinary, Fin: true}, true, key, 1<<62))
		time.Sleep(500 * time.Millisecond)
	})

	t.Run("BUG-2/memory", func(t *testing.T) {
		// A 14-byte header announcing 128 MiB makes Tether allocate 128 MiB.
		nc, _ := reproConn(t, tether.ConnOptions{ReadLimit: 256 << 20})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		nc.Write(appendHeader(nil, Frame{Op: opBinary, Fin: true}, true, key, 128<<20))
		time.Sleep(200 * time.Millisecond)
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
			t.Fatalf("%d MiB allocated for a frame header whose payload has not arrived", grown>>20)
		}
	})

	t.Run("BUG-3", func(t *testing.T) {
		// With no ReadLimit, start+h.Length overflows: this subtest ends the
		// test binary with "slice bounds out of range".
		nc, _ := reproConn(t, tether.ConnOptions{ReadLimit: -1})
		b := appendFrame(nil, Frame{Op: opBinary, Payload: []byte("fragment1")}, true)
		b = appendHeader(b, Frame{Op: opCont, Fin: true}, true, key, 1<<63-1)
		nc.Write(b)
		time.Sleep(500 * time.Millisecond)
	})
}

// reproConn starts a Tether server that reads and discards messages, and
// returns a raw TCP connection to it, past the opening handshake.
func reproConn(t *testing.T, opts tether.ConnOptions) (net.Conn, *bufio.Reader) {
	t.Helper()
	opts.PingInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := tether.Accept(w, r, &tether.AcceptOptions{ConnOptions: opts})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	key := newKey()
	nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return nc, br
}
