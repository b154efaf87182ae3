package transport

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSockaddrRoundTrip: what newSockaddr encodes decodes to the same
// address and port, in both families, with the kernel's lengths.
func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:5405", "10.1.2.3:1", "0.0.0.0:65535", "[::1]:5405", "[fd00:1::2]:6100", "[ff18::efc0:701]:5405"} {
		ap := netip.MustParseAddrPort(s)
		sa := newSockaddr(ap)
		want := uint32(unix.SizeofSockaddrInet4)
		if ap.Addr().Is6() {
			want = unix.SizeofSockaddrInet6
		}
		if sa.len != want {
			t.Errorf("%s: length %d, want %d", s, sa.len, want)
		}
		if got := sa.addrPort(); got != ap {
			t.Errorf("%s: decoded %s", s, got)
		}
	}
}

// FuzzDecodeSockaddr feeds decodeSockaddr what a kernel (or a broken one)
// could leave in msg_name and msg_namelen: it never panics or reads past
// the length it was given, returns the zero AddrPort for anything but a
// whole AF_INET or AF_INET6 address, and what it returns encodes back to
// the same address.
func FuzzDecodeSockaddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5405", "[::1]:5405", "[fd00::2]:7"} {
		sa := newSockaddr(netip.MustParseAddrPort(s))
		f.Add(unsafe.Slice((*byte)(unsafe.Pointer(&sa.raw)), unix.SizeofSockaddrInet6), sa.len)
	}
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{unix.AF_INET6, 0}, uint32(8))
	f.Fuzz(func(t *testing.T, data []byte, n uint32) {
		var raw unix.RawSockaddrInet6
		b := unsafe.Slice((*byte)(unsafe.Pointer(&raw)), unix.SizeofSockaddrInet6)
		copy(b, data)
		// Bytes past n are the kernel's to leave stale: the result
		// must not depend on them.
		ap := decodeSockaddr(&raw, n)
		for i := int(min(n, uint32(len(b)))); i < len(b); i++ {
			b[i] ^= 0xa5
		}
		if again := decodeSockaddr(&raw, n); again != ap {
			t.Fatalf("decoded %s, then %s after changing bytes past the length %d", ap, again, n)
		}
		if !ap.IsValid() {
			return
		}
		if raw.Family != unix.AF_INET && raw.Family != unix.AF_INET6 {
			t.Fatalf("family %d decoded as %s", raw.Family, ap)
		}
		if ap.Addr().Zone() != "" || (raw.Family == unix.AF_INET) != ap.Addr().Is4() {
			t.Fatalf("family %d decoded as %s", raw.Family, ap)
		}
		if sa := newSockaddr(ap); sa.addrPort() != ap {
			t.Fatalf("%s does not round-trip", ap)
		}
	})
}
