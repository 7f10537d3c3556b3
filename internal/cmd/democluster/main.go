// Command democluster runs a Tether cluster on this machine, for `make
// demo-cluster`: an embedded NATS server with JetStream on loopback, and
// three `tether serve` nodes (n1, n2, n3 on ports 8081-8083) as child
// processes of the tether binary, each with --nats pointing at it and
// --jetstream. It prints the URLs, relays the nodes' logs prefixed with
// their names, and stops everything on Ctrl-C (SIGINT or SIGTERM).
//
// Pressing Enter stops NATS, and again restarts it on the same port and
// store: the nodes go on delivering to their own connections, warn, count
// tether_cluster_local_only_total, and come back when it returns.
//
//	go run ./internal/cmd/democluster -tether bin/tether
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// config is what the flags set.
type config struct {
	tether   string // the tether binary
	nodes    int
	basePort int // first node's port; 0 gives every node a free port
	natsPort int // -1 picks a free one
	logLevel string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.tether, "tether", "bin/tether", "the tether binary (make tether builds it)")
	flag.IntVar(&cfg.nodes, "nodes", 3, "how many nodes")
	flag.IntVar(&cfg.basePort, "base-port", 8081, "port of node n1; n2 gets the next one, and so on (0: free ports)")
	flag.IntVar(&cfg.natsPort, "nats-port", 4222, "port of the NATS server (-1: a free one)")
	flag.StringVar(&cfg.logLevel, "log-level", "info", "the nodes' --log-level")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "democluster:", err)
		os.Exit(1)
	}
}

// run starts the cluster, prints its URLs on out and runs until ctx ends or
// a node exits. Each line read from in stops or restarts NATS.
func run(ctx context.Context, cfg config, in io.Reader, out, logs io.Writer) error {
	if _, err := os.Stat(cfg.tether); err != nil {
		return fmt.Errorf("tether binary: %w (make tether builds it)", err)
	}
	store, err := os.MkdirTemp("", "tether-democluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	ns, err := startNATS(cfg.natsPort, store)
	if err != nil {
		return err
	}
	defer func() { ns.stop() }()
	url := ns.url

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		nodes  []*node
		exited = make(chan string, cfg.nodes)
	)
	defer func() {
		cancel() // SIGINT to every node: each closes its connections with 1001
		wg.Wait()
	}()
	for i := range cfg.nodes {
		addr := "127.0.0.1:0"
		if cfg.basePort > 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", cfg.basePort+i)
		}
		n, err := startNode(ctx, cfg, fmt.Sprintf("n%d", i+1), addr, url, logs)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		wg.Go(func() {
			err := n.wait()
			exited <- fmt.Sprintf("%s (%v)", n.name, err)
		})
	}

	fmt.Fprintf(out, "nats  %s  (JetStream, store %s)\n", url, store)
	for _, n := range nodes {
		fmt.Fprintf(out, "%-4s  http://%s/  (dashboard)  ws://%s/broadcast  ws://%s/echo\n", n.name, n.addr, n.addr, n.addr)
	}
	first, last := nodes[0], nodes[len(nodes)-1]
	fmt.Fprintf(out, "try, in two terminals:\n"+
		"  %s connect --subprotocol tether.hub.v1 ws://%s/broadcast\n"+
		"  %s connect ws://%s/broadcast\n", cfg.tether, last.addr, cfg.tether, first.addr)
	fmt.Fprintln(out, "Enter stops NATS, Enter again restarts it (outage demo); Ctrl-C stops everything.")

	lines := make(chan struct{})
	go func() { // left blocked on stdin at exit: the process ends with it
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "stopping")
			return nil
		case name := <-exited:
			if ctx.Err() != nil {
				return nil // Ctrl-C reached the node first
			}
			return fmt.Errorf("node %s exited", name)
		case <-lines:
			if ns.running() {
				ns.stop()
				fmt.Fprintln(out, "NATS stopped: each node delivers to its own connections only")
			} else if err := ns.restart(); err != nil {
				fmt.Fprintln(out, "NATS did not restart:", err)
			} else {
				fmt.Fprintln(out, "NATS running again at", url)
			}
		}
	}
}

// natsServer is the embedded NATS server, which can be stopped and started
// again on the same port and store.
type natsServer struct {
	opts *server.Options
	url  string
	s    *server.Server
}

func startNATS(port int, store string) (*natsServer, error) {
	ns := &natsServer{opts: &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store,
		NoLog: true, NoSigs: true, ServerName: "democluster"}}
	if err := ns.restart(); err != nil {
		return nil, err
	}
	ns.url = ns.s.ClientURL()
	if a, ok := ns.s.Addr().(*net.TCPAddr); ok {
		ns.opts.Port = a.Port // a restart takes the same port
	}
	return ns, nil
}

func (ns *natsServer) running() bool { return ns.s != nil }

func (ns *natsServer) restart() error {
	s, err := server.NewServer(ns.opts)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("nats: not ready on port %d after 10 s", ns.opts.Port)
	}
	ns.s = s
	return nil
}

func (ns *natsServer) stop() {
	if ns.s != nil {
		ns.s.Shutdown()
		ns.s.WaitForShutdown()
		ns.s = nil
	}
}

// node is one `tether serve` child process.
type node struct {
	name string
	addr string // HOST:PORT it listens on
	cmd  *exec.Cmd
	done chan struct{} // closed when its output is drained
}

// startNode starts `tether serve` as node name and waits for its
// "listening on" line. Cancelling ctx sends it SIGINT, as Ctrl-C would.
func startNode(ctx context.Context, cfg config, name, addr, natsURL string, logs io.Writer) (*node, error) {
	cmd := exec.CommandContext(ctx, cfg.tether, "serve", "--addr", addr, "--nats", natsURL, "--node", name,
		"--jetstream", "--log-level", cfg.logLevel)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second // then killed
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	n := &node{name: name, cmd: cmd, done: make(chan struct{})}
	var relay sync.WaitGroup
	relay.Go(func() { prefix(logs, name, stderr) })
	first := make(chan string, 1)
	relay.Go(func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
			fmt.Fprintf(logs, "[%s] %s\n", name, sc.Text())
		}
	})
	go func() {
		relay.Wait()
		close(n.done)
	}()
	line, ok := <-first
	if !ok || !strings.HasPrefix(line, "listening on http://") {
		cmd.Process.Kill()
		n.wait()
		return nil, fmt.Errorf("node %s did not start (first line %q)", name, line)
	}
	n.addr = strings.TrimPrefix(line, "listening on http://")
	return n, nil
}

// wait waits for the process to exit and its output to be relayed.
func (n *node) wait() error {
	<-n.done
	return n.cmd.Wait()
}

// prefix copies r to w line by line, each line prefixed with [name].
func prefix(w io.Writer, name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(w, "[%s] %s\n", name, sc.Text())
	}
}
