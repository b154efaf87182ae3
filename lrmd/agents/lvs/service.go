// Package lvs implements builtin:lvs, ringmaster's LVS director (what
// keepalived's virtual_server and ldirectord do): a virtual service
// spread over real servers by a scheduler, with real-server health checks,
// quiescing and a sorry server. The kernel side sits behind Backend, with
// two implementations: the kernel IPVS (package lvs/ipvs) and nftables
// DNAT (package lvs/nft), and a Fake for unit tests.
package lvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors.
var (
	// ErrConfig: the parameters do not describe a valid service (rc 6).
	ErrConfig = errors.New("invalid LVS configuration")
	// ErrUnsupported: the backend cannot express the service (rc 6
	// with an explicit backend: the configuration asks for the
	// impossible).
	ErrUnsupported = errors.New("not supported by this backend")
	// ErrUnavailable: the backend cannot run on this node (kernel module
	// missing); rc 5 with an explicit backend, next backend with auto.
	ErrUnavailable = errors.New("backend unavailable")
)

// Schedulers are the kernel IPVS schedulers (ipvsadm -s), in the order
// ipvsadm's man page lists them.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"}

// Method is the forwarding method.
type Method string

// Forwarding methods (ipvsadm -m, -g, -i).
const (
	NAT    Method = "nat" // masquerading: the director rewrites the destination
	DR     Method = "dr"  // direct routing: same L2 segment, VIP on the real servers' lo
	Tunnel Method = "tun" // IP-in-IP tunnelling
)

// Key identifies a virtual service: protocol, VIP and port, or a
// firewall mark.
type Key struct {
	Proto  string // "tcp", "udp" or "fwm"
	VIP    netip.Addr
	Port   uint16
	FWMark uint32
}

// String renders the key as ipvsadm does ("TCP  10.0.0.1:80" without the
// padding): "TCP 10.0.0.1:80", "FWM 5".
func (k Key) String() string {
	if k.Proto == "fwm" {
		return "FWM " + strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return strings.ToUpper(k.Proto) + " " + netip.AddrPortFrom(k.VIP, k.Port).String()
}

// ID is a file-name-safe form of the key ("tcp-10.0.0.1-80", "fwm-5").
func (k Key) ID() string {
	if k.Proto == "fwm" {
		return "fwm-" + strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return k.Proto + "-" + strings.ReplaceAll(k.VIP.String(), ":", "_") + "-" + strconv.Itoa(int(k.Port))
}

// ParseKey parses the String form.
func ParseKey(s string) (Key, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Key{}, fmt.Errorf("%w: service key %q", ErrConfig, s)
	}
	switch strings.ToLower(f[0]) {
	case "fwm":
		m, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil || m == 0 {
			return Key{}, fmt.Errorf("%w: firewall mark %q", ErrConfig, f[1])
		}
		return Key{Proto: "fwm", FWMark: uint32(m)}, nil
	case "tcp", "udp":
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return Key{}, fmt.Errorf("%w: service address %q", ErrConfig, f[1])
		}
		return Key{Proto: strings.ToLower(f[0]), VIP: ap.Addr(), Port: ap.Port()}, nil
	}
	return Key{}, fmt.Errorf("%w: protocol %q", ErrConfig, f[0])
}

// Dest is a real server with its weight (0: quiesced, no new connections).
type Dest struct {
	Addr   netip.AddrPort
	Weight int
}

func (d Dest) String() string { return fmt.Sprintf("%s:%d", d.Addr, d.Weight) }

// Service is the desired (or, read back, the actual) state of one virtual
// service: what a Backend applies.
type Service struct {
	Key         Key
	Scheduler   string
	Method      Method
	Persistence uint32 // seconds; 0: none
	// Masquerade also SNATs forwarded connections to the director's
	// address, for NAT setups where real servers do not route back
	// through the director (nftables backend only).
	Masquerade bool
	Dests      []Dest
}

// MaxWeight is the largest real-server weight (ipvsadm's limit).
const MaxWeight = 65535

// ParseRealServers parses "IP:PORT[:WEIGHT],..." (IPv6 as [ADDR]:PORT).
// A missing port means defPort (the service port; 0 for firewall-mark
// services, meaning "the port the client asked for"); a missing weight
// is 1.
func ParseRealServers(s string, defPort uint16) ([]Dest, error) {
	var out []Dest
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		d, err := parseRealServer(item, defPort)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(o Dest) bool { return o.Addr == d.Addr }) {
			return nil, fmt.Errorf("%w: real server %s listed twice", ErrConfig, d.Addr)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseRealServer(item string, defPort uint16) (Dest, error) {
	bad := func(why string) (Dest, error) {
		return Dest{}, fmt.Errorf("%w: real server %q: %s (want IP:PORT[:WEIGHT])", ErrConfig, item, why)
	}
	var host, rest string
	if strings.HasPrefix(item, "[") {
		i := strings.IndexByte(item, ']')
		if i < 0 {
			return bad("unclosed [")
		}
		host, rest = item[1:i], strings.TrimPrefix(item[i+1:], ":")
	} else {
		host, rest, _ = strings.Cut(item, ":")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return bad("not an IP address")
	}
	port, weight := int(defPort), 1
	parts := strings.Split(rest, ":")
	if rest == "" {
		parts = nil
	}
	if len(parts) > 2 {
		return bad("too many fields")
	}
	if len(parts) >= 1 {
		if port, err = strconv.Atoi(parts[0]); err != nil || port < 0 || port > 65535 {
			return bad("bad port")
		}
	}
	if len(parts) == 2 {
		if weight, err = strconv.Atoi(parts[1]); err != nil || weight < 0 || weight > MaxWeight {
			return bad(fmt.Sprintf("weight must be 0-%d", MaxWeight))
		}
	}
	return Dest{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Weight: weight}, nil
}
