package webtransport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"time"
)

// CertValidity is how long a generated certificate is valid. Browsers accept a certificate by
// hash (serverCertificateHashes) only if it is valid for at most 14 days.
const CertValidity = 13 * 24 * time.Hour

// GenerateCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1, ::1 and localhost,
// valid from a minute ago for CertValidity.
func GenerateCert(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("webtransport: generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("webtransport: generating a serial number: %w", err)
	}
	notBefore := now.Add(-time.Minute)
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "wirelab"},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(CertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("webtransport: creating the certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// LoadCert reads a certificate and key in PEM files (--cert, --key).
func LoadCert(certFile, keyFile string) (tls.Certificate, error) {
	if (certFile == "") != (keyFile == "") {
		return tls.Certificate{}, errors.New("webtransport: give both --cert and --key, or neither to generate a certificate")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("webtransport: loading --cert %s --key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// CertHash is the SHA-256 hash of the certificate's DER encoding, as a browser's
// serverCertificateHashes wants it.
func CertHash(c tls.Certificate) [32]byte {
	if len(c.Certificate) == 0 {
		return [32]byte{}
	}
	return sha256.Sum256(c.Certificate[0])
}

// AppendCertHashJSON appends {"algorithm":"sha-256","hash":"<hex>","bytes":[...]}.
func AppendCertHashJSON(b []byte, h [32]byte) []byte {
	b = append(b, `{"algorithm":"sha-256","hash":"`...)
	b = hex.AppendEncode(b, h[:])
	b = append(b, `","bytes":[`...)
	for i, v := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return append(b, "]}\n"...)
}

// CertHashHandler serves GET /api/wt-cert-hash (CertHashPath): the JSON above, for
// new WebTransport(url, {serverCertificateHashes: [{algorithm, value: new Uint8Array(bytes)}]}).
func CertHashHandler(h [32]byte) http.Handler {
	body := AppendCertHashJSON(nil, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
}
