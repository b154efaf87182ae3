package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestConfigReloadOldRingd: a ringd without the reload service (older than
// ringctl) is named as such, with what to do instead, rather than as
// "unknown service: service 9"; ringctl does not retry it.
func TestConfigReloadOldRingd(t *testing.T) {
	qc := newQCluster(t) // votequorum and confdb only, as an older ringd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := qc.ringctl(ctx, "config", "reload", "--wait", "0s")
	if err == nil {
		t.Fatalf("reload against a ringd without the service succeeded: %s", out)
	}
	if msg := err.Error(); !strings.Contains(msg, "has no cluster-wide reload") || !strings.Contains(msg, "SIGHUP") {
		t.Fatalf("error %q (output %q)", msg, out)
	}
}
