package daemon

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// loadKeys reads the keyfile (the encrypting key) and the previous
// keyfiles (still accepted) named by the configuration.
func loadKeys(cfg *config.Config) ([][]byte, error) {
	if cfg.Totem.CryptoCipher == "none" {
		return nil, nil
	}
	var keys [][]byte
	for _, p := range append([]string{cfg.Totem.Keyfile}, cfg.Totem.PreviousKeyfiles...) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("totem.keyfile: %w", err)
		}
		if len(b) < 16 || len(b) > 4096 {
			return nil, fmt.Errorf("totem.keyfile %s: a key is 16-4096 bytes, got %d (make one with `ringctl keygen`)", p, len(b))
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// loopbackDriver runs a one-node ring without a network (until the Totem
// driver is wired in).
type loopbackDriver struct{ *exec.Loopback }

func (l loopbackDriver) Run(ctx context.Context, ev totem.Events) error {
	go func() { <-ctx.Done(); l.Close() }()
	l.Loopback.Run(ev)
	return nil
}

func (l loopbackDriver) Leave(context.Context) error { l.Close(); return nil }

func (l loopbackDriver) SetKeys([][]byte) error { return nil }

func newRing(cfg *config.Config, node totem.NodeID, log *zap.Logger) (RingDriver, error) {
	if _, err := loadKeys(cfg); err != nil {
		return nil, err
	}
	return loopbackDriver{exec.NewLoopback(node, 4096)}, nil
}
