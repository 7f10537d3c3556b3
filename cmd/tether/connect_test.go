package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
)

// lateServer runs testdata/late_server.py (python-websockets) answering
// after delay seconds, over TLS when certFile is set; it returns the port.
func lateServer(t *testing.T, delay, certFile, keyFile string) string {
	t.Helper()
	python := pythonWebsockets(t)
	args := []string{"testdata/late_server.py", delay}
	if certFile != "" {
		args = append(args, certFile, keyFile)
	}
	cmd := exec.Command(python, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("late_server.py: %q %v\n%s", line, err, stderr.String())
	}
	return port
}

// connectRun is one in-process `tether connect` run.
type connectRun struct {
	url  string
	in   string
	kf   connectFlags
	tf   clientTLS
	copt tether.ConnOptions
}

func (r connectRun) do(t *testing.T) (stdout, stderr string, err error) {
	t.Helper()
	if r.kf.output == "" {
		r.kf.output = "text"
	}
	if r.kf.compression == "" {
		r.kf.compression = "on"
	}
	cf := connFlags{pingInterval: r.copt.PingInterval, pingTimeout: r.copt.PingTimeout, mode: "fixed", maxSize: tether.DefaultReadLimit, logLevel: "error", logFormat: "text"}
	if cf.pingInterval == 0 {
		cf.pingInterval = tether.DefaultPingInterval
	}
	opts, err := dialOptions(&cf, &r.kf, &r.tf, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = runConnectFlags(ctx, r.url, opts, r.kf, strings.NewReader(r.in), &out, &errOut)
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	var e exitError
	if errors.As(err, &e) {
		return e.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// TestConnectEndOfInputModes runs connect's end-of-input modes against a
// python-websockets server that answers 0.7 s late.
func TestConnectEndOfInputModes(t *testing.T) {
	port := lateServer(t, "0.7", "", "")
	base := "ws://127.0.0.1:" + port
	cases := []struct {
		name       string
		run        connectRun
		out, errIs string
		code       int
	}{
		{"wait", connectRun{url: base + "/echo", in: "req\n", kf: connectFlags{wait: 3 * time.Second}}, "req\n", "", 0},
		{"no-close, the peer closes", connectRun{url: base + "/close", in: "", kf: connectFlags{noClose: true}}, "bye\n", "connection closed: 1000 done\n", 1},
		{"one-message", connectRun{url: base + "/echo", in: "a\nb\n", kf: connectFlags{noClose: true, oneMessage: true}}, "a\n", "", 0},
		{"listen-only, one message", connectRun{url: base + "/push", kf: connectFlags{listenOnly: true, oneMessage: true}}, "hello\n", "", 0},
		{"listen-only, the peer closes", connectRun{url: base + "/close", kf: connectFlags{listenOnly: true}}, "bye\n", "connection closed: 1000 done\n", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := tc.run.do(t)
			if out != tc.out || errOut != tc.errIs || exitCode(err) != tc.code {
				t.Fatalf("stdout %q stderr %q exit %d (%v); want %q %q %d", out, errOut, exitCode(err), err, tc.out, tc.errIs, tc.code)
			}
		})
	}
}

// TestConnectRace1009 sends a 2 MB line to a server taking 1 MiB: its 1009
// close races our end of input and our 1000. Every run must report 1009
// and exit 1.
func TestConnectRace1009(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	line := strings.Repeat("x", 2<<20) + "\n"
	for i := range 50 {
		_, errOut, err := connectRun{url: "ws://" + addr + "/echo", in: line}.do(t)
		if exitCode(err) != 1 || !strings.HasPrefix(errOut, "connection closed: 1009") {
			t.Fatalf("run %d: exit %d (%v), stderr %q; want 1 and the 1009", i, exitCode(err), err, errOut)
		}
	}
}

// TestConnectWSS connects to a python-websockets wss server whose
// certificate `tether cert` made: trusted with --cacert, or --insecure.
func TestConnectWSS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeSelfSigned(certFile, keyFile, []string{"localhost", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	port := lateServer(t, "0", certFile, keyFile)
	url := "wss://127.0.0.1:" + port + "/echo"
	for _, tf := range []clientTLS{{cacert: certFile}, {insecure: true}} {
		out, errOut, err := connectRun{url: url, in: "over tls\n", tf: tf}.do(t)
		if err != nil || out != "over tls\n" {
			t.Fatalf("%+v: stdout %q stderr %q err %v", tf, out, errOut, err)
		}
	}
	_, _, err := connectRun{url: url, in: "x\n"}.do(t)
	if err == nil || strings.Count(err.Error(), "tls:") != 1 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v, want one tls: prefix and the certificate's problem", err)
	}
}

// TestConnectRoundTrips sends arbitrary bytes through /echo: raw (one
// binary message of every byte value), jsonl (text with newlines and
// binary), and --binary lines (printed in hex).
func TestConnectRoundTrips(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	url := "ws://" + addr + "/echo"
	blob := make([]byte, 200_000)
	rand.Read(blob)
	for i := range 256 {
		blob[i] = byte(i)
	}
	out, errOut, err := connectRun{url: url, in: string(blob), kf: connectFlags{raw: true}}.do(t)
	if err != nil || out != string(blob) {
		t.Fatalf("raw: %d bytes back (want %d, equal %v), stderr %q, err %v", len(out), len(blob), out == string(blob), errOut, err)
	}

	var in strings.Builder
	for _, m := range []jsonLine{{"text", "two\nlines\r\n\"quoted\" \x00 ü"}, jsonMessage(tether.Binary, blob[:5000]), {"text", ""}, jsonMessage(tether.Binary, nil)} {
		b, _ := json.Marshal(m)
		in.Write(b)
		in.WriteByte('\n')
	}
	out, errOut, err = connectRun{url: url, in: in.String(), kf: connectFlags{jsonlInput: true, output: "jsonl"}}.do(t)
	if err != nil || out != in.String() {
		t.Fatalf("jsonl: got\n%s\nwant\n%s\nstderr %q err %v", out, in.String(), errOut, err)
	}

	out, _, err = connectRun{url: url, in: "AB\n", kf: connectFlags{binary: true}}.do(t)
	if err != nil || out != "4142\n" {
		t.Fatalf("--binary: %q %v, want 4142", out, err)
	}
	out, _, err = connectRun{url: url, in: "AB\n", kf: connectFlags{output: "base64"}}.do(t)
	if err != nil || out != "QUI=\n" {
		t.Fatalf("--output base64: %q %v", out, err)
	}
}

// TestConnectPrintRTT prints keepalive round trips while it waits.
func TestConnectPrintRTT(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	r := connectRun{url: "ws://" + addr + "/echo", kf: connectFlags{wait: 600 * time.Millisecond, printRTT: true}, copt: tether.ConnOptions{PingInterval: 100 * time.Millisecond}}
	_, errOut, err := r.do(t)
	if err != nil || !strings.Contains(errOut, "rtt ") {
		t.Fatalf("stderr %q err %v, want rtt lines", errOut, err)
	}
}
