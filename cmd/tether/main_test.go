package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherws/tether"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServe runs `tether serve` in-process on a free port and returns its
// address and a function that stops it like SIGINT does.
func startServe(t *testing.T, opts tether.ConnOptions) (addr string, stop func() error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := runServe(ctx, "127.0.0.1:0", opts, pw)
		pw.Close()
		errc <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(line, "listening on http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	addr = strings.TrimSpace(strings.TrimPrefix(line, "listening on http://"))
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func TestConnectEchoesLines(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	var out, errOut bytes.Buffer
	in := strings.NewReader("hello\nwörld\n\nlast line\n")
	opts := &tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: slog.New(slog.DiscardHandler)}}
	if err := runConnect(context.Background(), "ws://"+addr+"/echo", opts, in, &out, &errOut); err != nil {
		t.Fatalf("connect: %v (stderr %q)", err, errOut.String())
	}
	if got, want := out.String(), "hello\nwörld\n\nlast line\n"; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
}

func TestServeShutdownSends1001(t *testing.T) {
	addr, stop := startServe(t, tether.ConnOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tether.Dial(ctx, "ws://"+addr+"/broadcast", &tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	_, _, err = c.Read(ctx)
	if code := tether.CloseStatus(err); code != tether.StatusGoingAway {
		t.Fatalf("client read %v, want close 1001", err)
	}
}

func TestBroadcastReachesEveryone(t *testing.T) {
	addr, _ := startServe(t, tether.ConnOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &tether.DialOptions{ConnOptions: tether.ConnOptions{Logger: slog.New(slog.DiscardHandler)}}
	var conns []*tether.Conn
	for range 3 {
		c, _, err := tether.Dial(ctx, "ws://"+addr+"/broadcast", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	waitConns(t, addr, 3)
	broadcastUntilAll(t, ctx, conns[0], conns, []byte("to all"))
}

// broadcastUntilAll sends msg on /broadcast from sender until every one of
// conns has read a copy, each read checked to be msg. The server lists a
// connection just after its handshake and joins it to the room just after
// that: a broadcast sent in between misses it, so one is not enough.
func broadcastUntilAll(t *testing.T, ctx context.Context, sender *tether.Conn, conns []*tether.Conn, msg []byte) {
	t.Helper()
	var got sync.WaitGroup
	for i, c := range conns {
		got.Go(func() {
			typ, p, err := c.Read(ctx)
			if err != nil || typ != tether.Text || !bytes.Equal(p, msg) {
				t.Errorf("conn %d got %v %q %v, want %q", i, typ, p, err, msg)
			}
		})
	}
	all := make(chan struct{})
	go func() {
		got.Wait()
		close(all)
	}()
	for {
		if err := sender.Write(ctx, tether.Text, msg); err != nil {
			t.Fatal(err)
		}
		select {
		case <-all:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBinarySignal builds the real binary and checks that SIGTERM closes a
// connection with 1001 and exits 0, and that connect reports the close.
func TestBinarySignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	stdout, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		srv.Process.Kill()
		srv.Wait()
		t.Fatal(err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on http://"))

	cli := exec.Command(bin, "connect", "ws://"+addr+"/echo")
	stdin, _ := cli.StdinPipe() // kept open: the connection stays up
	var cliErr bytes.Buffer
	cli.Stderr = &cliErr
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	waitConns(t, addr, 1)

	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve exit after SIGTERM: %v", err)
	}
	err = cli.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("connect exit = %v, want non-zero", err)
	}
	if !strings.Contains(cliErr.String(), "connection closed: 1001") {
		t.Fatalf("connect stderr %q, want the 1001 close", cliErr.String())
	}
}

// waitConns polls /api/connections until it lists n connections.
func waitConns(t *testing.T, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var list []map[string]any
		resp, err := http.Get("http://" + addr + "/api/connections")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			if len(list) >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server never listed %d connections", n)
}
