package daemon

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"ringmaster/ipc"
	"ringmaster/reconfig"
	"ringmaster/reconfig/wire"
)

// TestReloadTimeoutRange: a client's timeout is checked as it came, before
// it is multiplied into a Duration: 18446744074710 ms × 10^6 wraps to
// about 1 s, which the machine's own range check would take.
func TestReloadTimeoutRange(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want time.Duration
		ok   bool
	}{
		{0, defaultReloadTimeout, true},
		{1500, 1500 * time.Millisecond, true},
		{wire.MaxTimeout.Milliseconds(), wire.MaxTimeout, true},
		{wire.MaxTimeout.Milliseconds() + 1, 0, false},
		{-1, 0, false},
		{18446744074710, 0, false},
		{math.MaxInt64, 0, false},
	} {
		got, err := reloadTimeout(wire.ReloadRequest{TimeoutMS: tc.ms})
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("%d ms: %v, %v", tc.ms, got, err)
		}
		if err != nil && !errors.Is(err, reconfig.ErrInvalid) {
			t.Errorf("%d ms: %v is not ErrInvalid", tc.ms, err)
		}
	}
	// A busy machine is a moment to retry, not an invalid request.
	if c := startErrCode(fmt.Errorf("x: %w", reconfig.ErrBusy)); c != ipc.CodeTryAgain {
		t.Errorf("busy: %v", c)
	}
	if c := startErrCode(reconfig.ErrInvalid); c != ipc.CodeInvalid {
		t.Errorf("invalid: %v", c)
	}
}
