// Package testutil holds helpers shared by tests: root checks that fail
// instead of skipping in CI, and condition waits with deadlines.
package testutil

import (
	"os"
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
