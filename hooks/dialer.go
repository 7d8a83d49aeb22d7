package hooks

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// BlockedAddressError is a connection refused because the receiver's
// address is not public (SSRF protection).
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string
}

// Error implements error.
func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address (set DESKFORGE_WEBHOOKS_ALLOW_PRIVATE=true to deliver to private networks)", e.Addr, e.Reason)
}

// Ranges that are not public besides those netip classifies.
var (
	sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT
	thisNetwork        = netip.MustParsePrefix("0.0.0.0/8")
	reservedIPv4       = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	nat64              = netip.MustParsePrefix("64:ff9b::/96")
)

// CheckAddress returns a *BlockedAddressError when addr is loopback,
// private (RFC 1918, unique local IPv6), link-local, multicast, unspecified
// or otherwise not publicly routable. IPv4-mapped and NAT64 IPv6 addresses
// are judged by the IPv4 address they carry.
func CheckAddress(addr netip.Addr) error {
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		v4 := addr.As16()
		addr = netip.AddrFrom4([4]byte(v4[12:]))
	}
	reason := ""
	switch {
	case addr.IsLoopback():
		reason = "a loopback"
	case addr.IsPrivate():
		reason = "a private"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		reason = "a link-local"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		reason = "a multicast"
	case addr.IsUnspecified(), thisNetwork.Contains(addr):
		reason = "an unspecified"
	case sharedAddressSpace.Contains(addr), reservedIPv4.Contains(addr):
		reason = "a reserved"
	}
	if reason != "" {
		return &BlockedAddressError{Addr: addr, Reason: reason}
	}
	return nil
}

// dialControl is net.Dialer.Control: it runs after name resolution, on the
// address actually being connected to, so a name that resolves (or is
// rebound) to a private address is refused.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address and port", address)
	}
	return CheckAddress(ap.Addr())
}

// NewHTTPClient returns the client that sends deliveries: timeout bounds
// each attempt (connection, request and response), redirects are not
// followed (a 3xx is a failed attempt), no proxy is used, and unless
// allowPrivate the dialer refuses non-public addresses (CheckAddress).
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = dialControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the address check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
