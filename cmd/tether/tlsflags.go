package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// clientTLS are the client's TLS flags, shared by connect and proxy (its
// upstream side).
type clientTLS struct {
	insecure  bool
	cacert    string
	cert, key string
}

func (f *clientTLS) register(cmd *cobra.Command, prefix string) {
	fl := cmd.Flags()
	fl.BoolVar(&f.insecure, prefix+"insecure", false, "accept any server certificate (testing only)")
	fl.StringVar(&f.cacert, prefix+"cacert", "", "PEM file of CA certificates to trust instead of the system's")
	fl.StringVar(&f.cert, prefix+"cert", "", "PEM client certificate (with --"+prefix+"key)")
	fl.StringVar(&f.key, prefix+"key", "", "PEM private key of --"+prefix+"cert")
}

// config returns the TLS configuration the flags ask for, or nil for the
// default one.
func (f *clientTLS) config() (*tls.Config, error) {
	if !f.insecure && f.cacert == "" && f.cert == "" && f.key == "" {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", f.cacert)
		}
		cfg.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return nil, fmt.Errorf("--cert and --key go together")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
