package transports

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
)

// ownOrigins are the hosts and ports a browser reaches this server at: a page served from one of
// them is the server's own. The request's Host header is not one of them by itself: it is
// whatever name the browser used, and a DNS-rebinding page (evil.example resolving to
// 127.0.0.1) sends Host: evil.example and Origin: http://evil.example alike.
type ownOrigins struct {
	mu    sync.RWMutex
	addrs map[string]bool // originKey(host, port)
}

// AddAddr makes addr (HOST:PORT, where browsers reach this server) the server's own origin, in
// http and https: CheckOrigin accepts pages served from it. A loopback address adds localhost
// (and localhost adds 127.0.0.1 and ::1); an unspecified host (0.0.0.0, ::, or none) adds
// localhost and every address of this machine's network interfaces. server.Serve adds its
// listener's address; lab serve adds the host --addr names; lab demo its relay's address.
func (s *Server) AddAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("transports: address %q: %v (want HOST:PORT)", addr, err)
	}
	hosts := []string{host}
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case host == "" || (ipErr == nil && ip.IsUnspecified()):
		hosts = []string{"localhost"}
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("transports: listing this machine's addresses for %s: %w", addr, err)
		}
		for _, a := range ifaddrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				hosts = append(hosts, p.Addr().String())
			}
		}
	case ipErr == nil && ip.IsLoopback():
		hosts = append(hosts, "localhost")
	case strings.EqualFold(host, "localhost"):
		hosts = append(hosts, "127.0.0.1", "::1")
	}
	o := &s.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.addrs == nil {
		o.addrs = map[string]bool{}
	}
	for _, h := range hosts {
		o.addrs[originKey(h, port)] = true
	}
	return nil
}

// originKey is host and port in one canonical form: lower case, no trailing dot, IP addresses
// as netip writes them (IPv4-mapped IPv6 as IPv4, no zone).
func originKey(host, port string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().WithZone("").String()
	}
	return net.JoinHostPort(host, port)
}

// ownOrigin reports whether origin (scheme://host[:port]) is a page of this server's: http or
// https on one of its addresses (AddAddr) and that address's port.
func (s *Server) ownOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return false
	}
	o := &s.own
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.addrs[originKey(u.Hostname(), port)]
}

// CheckOrigin accepts requests without an Origin header (not from a browser), from the server's
// own origins (AddAddr), and from AllowOrigins. It does not trust the request's Host: under DNS
// rebinding the attacker's page and its requests both name the attacker's host.
func (s *Server) CheckOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.ownOrigin(origin) {
		return true
	}
	for _, a := range s.opt.AllowOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}
