// Package ipvs is the kernel IPVS backend of builtin:lvs, through
// github.com/moby/ipvs. moby/ipvs does not notice when the kernel has no
// IPVS (it looks the generic-netlink family up once and silently keeps
// family 0), so Open checks for the "IPVS" generic-netlink family first
// and fails with a message naming the missing module.
package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"syscall"

	mipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"

	"ringmaster/lrmd/agents/lvs"
)

// ErrNoIPVS: the kernel has no IPVS (module ip_vs not loaded or not built).
var ErrNoIPVS = errors.New("kernel IPVS is not available: the generic netlink family \"IPVS\" is missing (load the ip_vs kernel module: modprobe ip_vs)")

// FamilyLookup reports whether a generic-netlink family exists. The real
// one asks the kernel; tests substitute it to exercise both branches.
type FamilyLookup func(name string) error

// KernelFamily looks the family up with the kernel's genetlink controller.
func KernelFamily(name string) error {
	_, err := netlink.GenlFamilyGet(name)
	return err
}

// Available reports, wrapping ErrNoIPVS and lvs.ErrUnavailable, whether
// the kernel has IPVS.
func Available(lookup FamilyLookup) error {
	if lookup == nil {
		lookup = KernelFamily
	}
	if err := lookup("IPVS"); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EINVAL) || isNotFound(err) {
			return fmt.Errorf("%w: %w", lvs.ErrUnavailable, ErrNoIPVS)
		}
		return fmt.Errorf("%w: %w (%v)", lvs.ErrUnavailable, ErrNoIPVS, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ENOENT || errno == syscall.ENODEV)
}

// Backend is the IPVS lvs.Backend.
type Backend struct {
	mu sync.Mutex
	h  *mipvs.Handle
}

// Open checks for kernel IPVS and opens a handle in the namespace at
// nsPath ("" for the caller's).
func Open(nsPath string, lookup FamilyLookup) (*Backend, error) {
	if err := Available(lookup); err != nil {
		return nil, err
	}
	h, err := mipvs.New(nsPath)
	if err != nil {
		return nil, fmt.Errorf("%w: ipvs handle: %v", lvs.ErrUnavailable, err)
	}
	return &Backend{h: h}, nil
}

// Name implements lvs.Backend.
func (b *Backend) Name() string { return "ipvs" }

// Close implements lvs.Backend.
func (b *Backend) Close() error {
	b.h.Close()
	return nil
}

// Check implements lvs.Backend: IPVS expresses every scheduler and
// method; masquerade is an nftables-backend feature.
func (b *Backend) Check(svc lvs.Service) error { return Check(svc) }

// Check is Backend.Check without a handle.
func Check(svc lvs.Service) error {
	if !slices.Contains(lvs.Schedulers, svc.Scheduler) {
		return fmt.Errorf("%w: scheduler %q", lvs.ErrUnsupported, svc.Scheduler)
	}
	if svc.Masquerade {
		return fmt.Errorf("%w: masquerade: IPVS does not SNAT; use the nftables backend or add an SNAT rule", lvs.ErrUnsupported)
	}
	return nil
}

// ipvs flag for persistent services (IP_VS_SVC_F_PERSISTENT).
const svcFlagPersistent = 0x1

// ToKernel translates a service into moby/ipvs structures.
func ToKernel(svc lvs.Service) (*mipvs.Service, []*mipvs.Destination) {
	s := &mipvs.Service{SchedName: svc.Scheduler, AddressFamily: syscall.AF_INET, Netmask: 0xffffffff}
	if svc.Key.Proto == "fwm" {
		s.FWMark = svc.Key.FWMark
	} else {
		s.Address = net.IP(svc.Key.VIP.AsSlice())
		s.Port = svc.Key.Port
		s.Protocol = syscall.IPPROTO_TCP
		if svc.Key.Proto == "udp" {
			s.Protocol = syscall.IPPROTO_UDP
		}
		if svc.Key.VIP.Is6() {
			s.AddressFamily, s.Netmask = syscall.AF_INET6, 128
		}
	}
	if svc.Persistence > 0 {
		s.Flags |= svcFlagPersistent
		s.Timeout = svc.Persistence
	}
	fwd := uint32(mipvs.ConnectionFlagMasq)
	switch svc.Method {
	case lvs.DR:
		fwd = mipvs.ConnectionFlagDirectRoute
	case lvs.Tunnel:
		fwd = mipvs.ConnectionFlagTunnel
	}
	var ds []*mipvs.Destination
	for _, d := range svc.Dests {
		af := uint16(syscall.AF_INET)
		if d.Addr.Addr().Is6() {
			af = syscall.AF_INET6
		}
		ds = append(ds, &mipvs.Destination{Address: net.IP(d.Addr.Addr().AsSlice()), Port: d.Addr.Port(), Weight: d.Weight, ConnectionFlags: fwd, AddressFamily: af})
	}
	return s, ds
}

func fromKernel(s *mipvs.Service, ds []*mipvs.Destination) lvs.Service {
	svc := lvs.Service{Scheduler: s.SchedName, Method: lvs.NAT}
	if s.FWMark != 0 {
		svc.Key = lvs.Key{Proto: "fwm", FWMark: s.FWMark}
	} else {
		a, _ := netip.AddrFromSlice(s.Address)
		proto := "tcp"
		if s.Protocol == syscall.IPPROTO_UDP {
			proto = "udp"
		}
		svc.Key = lvs.Key{Proto: proto, VIP: a.Unmap(), Port: s.Port}
	}
	if s.Flags&svcFlagPersistent != 0 {
		svc.Persistence = s.Timeout
	}
	for _, d := range ds {
		a, _ := netip.AddrFromSlice(d.Address)
		switch d.ConnectionFlags & mipvs.ConnectionFlagFwdMask {
		case mipvs.ConnectionFlagDirectRoute:
			svc.Method = lvs.DR
		case mipvs.ConnectionFlagTunnel:
			svc.Method = lvs.Tunnel
		}
		svc.Dests = append(svc.Dests, lvs.Dest{Addr: netip.AddrPortFrom(a.Unmap(), d.Port), Weight: d.Weight})
	}
	sort.Slice(svc.Dests, func(i, j int) bool { return svc.Dests[i].Addr.Compare(svc.Dests[j].Addr) < 0 })
	return svc
}

// Apply implements lvs.Backend: creates or updates the service and makes
// its destinations match (weight 0 destinations stay, quiesced).
func (b *Backend) Apply(_ context.Context, svc lvs.Service) error {
	if err := Check(svc); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ks, want := ToKernel(svc)
	if b.h.IsServicePresent(ks) {
		if err := b.h.UpdateService(ks); err != nil {
			return fmt.Errorf("ipvs update %s: %w", svc.Key, err)
		}
	} else if err := b.h.NewService(ks); err != nil {
		return fmt.Errorf("ipvs add %s: %w", svc.Key, err)
	}
	have, err := b.h.GetDestinations(ks)
	if err != nil {
		return fmt.Errorf("ipvs destinations of %s: %w", svc.Key, err)
	}
	key := func(d *mipvs.Destination) string { return fmt.Sprintf("%s:%d", d.Address, d.Port) }
	wanted := map[string]*mipvs.Destination{}
	for _, d := range want {
		wanted[key(d)] = d
	}
	for _, d := range have {
		if _, ok := wanted[key(d)]; !ok {
			if err := b.h.DelDestination(ks, d); err != nil {
				return fmt.Errorf("ipvs remove %s from %s: %w", key(d), svc.Key, err)
			}
		}
	}
	present := map[string]bool{}
	for _, d := range have {
		present[key(d)] = true
	}
	for _, d := range want {
		op := b.h.NewDestination
		if present[key(d)] {
			op = b.h.UpdateDestination
		}
		if err := op(ks, d); err != nil {
			return fmt.Errorf("ipvs destination %s of %s: %w", key(d), svc.Key, err)
		}
	}
	return nil
}

// Remove implements lvs.Backend.
func (b *Backend) Remove(_ context.Context, k lvs.Key) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ks, _ := ToKernel(lvs.Service{Key: k, Scheduler: "rr"})
	if !b.h.IsServicePresent(ks) {
		return nil
	}
	if err := b.h.DelService(ks); err != nil {
		return fmt.Errorf("ipvs remove %s: %w", k, err)
	}
	return nil
}

// List implements lvs.Backend (every IPVS service, as ipvsadm -Ln).
func (b *Backend) List(_ context.Context) ([]lvs.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ss, err := b.h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs services: %w", err)
	}
	var out []lvs.Service
	for _, s := range ss {
		ds, err := b.h.GetDestinations(s)
		if err != nil {
			return nil, fmt.Errorf("ipvs destinations: %w", err)
		}
		out = append(out, fromKernel(s, ds))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out, nil
}
