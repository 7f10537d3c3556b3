// Package natstest starts embedded NATS servers for tests: on loopback,
// ready for connections, and shut down (and waited for) when the test
// ends, so that no goroutine of theirs outlives it.
package natstest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options say what server to start. The zero value is a plain server on a
// free port.
type Options struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// JetStream turns JetStream on, storing in StoreDir, or in a directory
	// of the test when StoreDir is empty.
	JetStream bool
	StoreDir  string
	// Cluster makes the server one of a cluster, on a free route port; it
	// joins the servers at Routes (nats-route:// URLs).
	Cluster bool
	Routes  []string
}

var serial atomic.Int64

// Start starts a server and returns it once it accepts connections.
func Start(t testing.TB, o Options) *server.Server {
	t.Helper()
	so := &server.Options{Host: "127.0.0.1", Port: o.Port, NoLog: true, NoSigs: true,
		ServerName: fmt.Sprintf("natstest-%d", serial.Add(1))} // cluster members need distinct names
	if so.Port == 0 {
		so.Port = -1
	}
	if o.JetStream {
		so.JetStream, so.StoreDir = true, o.StoreDir
		if so.StoreDir == "" {
			so.StoreDir = t.TempDir()
		}
	}
	if o.Cluster {
		so.Cluster = server.ClusterOpts{Name: "tether-test", Host: "127.0.0.1", Port: -1}
		for _, r := range o.Routes {
			so.Routes = append(so.Routes, server.RoutesFromStr(r)...)
		}
	}
	s, err := server.NewServer(so)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
