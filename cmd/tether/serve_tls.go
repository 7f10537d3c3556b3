package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// serveTLS are serve's listening flags: --tls-cert and --tls-key, and
// --reuseport.
type serveTLS struct {
	cert, key string
	reusePort bool
}

func (st serveTLS) check() error {
	if (st.cert == "") != (st.key == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	return nil
}

// listen listens on addr, with TLS when st names a certificate; scheme is
// what the first line prints, http or https. A TLS connection is served by
// its own goroutines: the event engine only drives plain TCP.
func (st serveTLS) listen(addr string) (ln net.Listener, scheme string, err error) {
	var cfg *tls.Config
	if st.cert != "" {
		pair, err := tls.LoadX509KeyPair(st.cert, st.key)
		if err != nil {
			return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}}
	}
	var lc net.ListenConfig
	if st.reusePort {
		lc.Control = reusePort
	}
	ln, err = lc.Listen(context.Background(), "tcp", addr)
	if err != nil || cfg == nil {
		return ln, "http", err
	}
	return tls.NewListener(ln, cfg), "https", nil
}
