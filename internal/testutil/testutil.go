// Package testutil holds helpers shared by tests: root checks that fail
// instead of skipping in CI, and condition waits with deadlines.
package testutil

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where tests that
// need root or the kernel must run and fail rather than skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips the test when not root, except in CI where it fails:
// a kernel test that silently skips in CI would be a test that cannot fail.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("this test needs root (network namespaces, netlink, setuid); CI runs as root, so not being root here is an error")
	}
	t.Skip("needs root; run as root (CI does)")
}

// WaitFor polls cond every few milliseconds until it holds or the deadline
// passes, then fails the test with msg.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ReservePort picks a port in 20000–39999 for a test cluster's ring,
// held for the test's lifetime by an flock on a file in the temporary
// directory: test processes of different packages run side by side and
// would otherwise draw the same port now and then (ringd then fails to
// bind, or two clusters on 127.0.0.x hear each other).
func ReservePort(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		p := 20000 + rand.IntN(20000)
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("ringmaster-port-%d.lock", p)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		tb.Cleanup(func() { f.Close() })
		return p
	}
	tb.Fatal("no free test port after 1000 draws")
	return 0
}
