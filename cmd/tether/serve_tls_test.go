package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/internal/browsertest"
)

// startServeTLS runs `tether serve --tls-cert --tls-key` in-process with a
// certificate from tether cert; it returns the address and the cert file.
func startServeTLS(t *testing.T) (addr, certFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeSelfSigned(certFile, keyFile, []string{"localhost", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	opts := tether.ConnOptions{Logger: slog.New(slog.DiscardHandler)}
	go func() {
		err := runServeWith(ctx, "127.0.0.1:0", "", opts, clusterFlags{}, serveTLS{cert: certFile, key: keyFile}, defaultLimits(), pw)
		pw.Close()
		errc <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	line, _ := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on https://")
	if !ok {
		t.Fatalf("first line %q, want listening on https://", line)
	}
	return addr, certFile
}

// TestServeTLS serves wss and https with a self-signed certificate: a Node
// ws client echoes over wss, the dashboard's API answers over https, and
// Chromium loads the dashboard (its feed over wss) and echoes from a page.
func TestServeTLS(t *testing.T) {
	addr, certFile := startServeTLS(t)
	port := addr[strings.LastIndex(addr, ":")+1:]

	out, _, err := connectRun{url: "wss://localhost:" + port + "/echo", in: "tether over tls\n", tf: clientTLS{cacert: certFile}}.do(t)
	if err != nil || out != "tether over tls\n" {
		t.Fatalf("tether connect: %q %v", out, err)
	}

	pem, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://localhost:" + port + "/api/connections")
	if err != nil {
		t.Fatal(err)
	}
	var list []any
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/connections over https: %s %v", resp.Status, err)
	}
	hc.CloseIdleConnections()

	nodeEchoTLS(t, "wss://localhost:"+port+"/echo", certFile)

	node := browsertest.Prereqs(t, "../../dashboard/browser")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "tls.mjs", "https://localhost:"+port+"/")
	cmd.Dir = "../../dashboard/browser"
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "PASS") {
		t.Fatalf("Chromium over https/wss: %v\n%s", err, b)
	}
}

// nodeEchoTLS runs interop/peers/node/client.js (the npm ws package) in
// echo mode over wss, trusting certFile through NODE_EXTRA_CA_CERTS.
func nodeEchoTLS(t *testing.T, url, certFile string) {
	t.Helper()
	node, err := exec.LookPath("node")
	const dir = "../../interop/peers/node"
	if _, serr := os.Stat(dir + "/node_modules/ws"); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs node and interop/peers/node/node_modules (make deps): %v %v", err, serr)
		}
		t.Skipf("node or its ws package missing (make deps): %v %v", err, serr)
	}
	cmd := exec.Command(node, "client.js", url, "echo")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+certFile, "PEER_TIMEOUT=20")
	cmd.Stdin = strings.NewReader(`{"type":"text","data":"node over wss"}` + "\n")
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "recv text 13 ") || !strings.Contains(string(b), "closed 1000") {
		t.Fatalf("node ws client over wss: %v\n%s", err, b)
	}
}
