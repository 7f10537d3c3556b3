package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func certCmd() *cobra.Command {
	var (
		dir   string
		hosts string
		valid time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Write a self-signed certificate and key for local testing (cert.pem, key.pem)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if err := writeSelfSigned(certFile, keyFile, strings.Split(hosts, ","), valid); err != nil {
				return err
			}
			return printCertUsage(cmd.OutOrStdout(), certFile, keyFile)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", ".", "directory to write cert.pem and key.pem to")
	fl.StringVar(&hosts, "hosts", "localhost,127.0.0.1,::1", "comma-separated host names and IP addresses the certificate is for")
	fl.DurationVar(&valid, "valid", 30*24*time.Hour, "how long the certificate is valid")
	return cmd
}

func printCertUsage(w io.Writer, certFile, keyFile string) error {
	_, err := fmt.Fprintf(w, "wrote %s and %s\n  tether serve --tls-cert %s --tls-key %s\n  tether connect --cacert %s wss://localhost:8080/echo\n",
		certFile, keyFile, certFile, keyFile, certFile)
	return err
}

// writeSelfSigned writes a self-signed ECDSA certificate for hosts and its
// key. The certificate is its own CA, so clients can trust it with
// --cacert (or NODE_EXTRA_CA_CERTS, or an ssl context's cafile) directly.
func writeSelfSigned(certFile, keyFile string, hosts []string, valid time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tether local test", Organization: []string{"tether cert"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
