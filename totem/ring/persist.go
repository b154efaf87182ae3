package ring

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ringmaster/internal/durable"
	"ringmaster/totem"
)

// SeqFileName is the base name of the file in state_dir where node keeps
// its highest ring sequence number; ringd's startup cleanup needs it.
func SeqFileName(node totem.NodeID) string {
	return "ringseq." + strconv.FormatUint(uint64(node), 10)
}

// seqFile is where a node keeps its highest ring sequence number, one file
// per node ID so several nodes may share a state directory in tests.
func seqFile(dir string, node totem.NodeID) string {
	return filepath.Join(dir, SeqFileName(node))
}

// MaxPersistedSeq bounds the ring sequence numbers a node persists and
// loads. Each new ring adds 4, so 2^48 lasts two thousand years at a
// thousand ring changes per second; a value above it was forged or
// corrupted, and persisting it would stick the cluster across restarts
// (every later ring must number above it, and uint64 arithmetic overflows
// near 2^64). Sequence numbers taken from the wire are meant to be bounded
// by the same value (issue 11, item 3).
const MaxPersistedSeq = 1 << 48

// loadSeq reads the persisted ring sequence number (0 when none yet). A
// file that does not hold one decimal number in [0, MaxPersistedSeq] is an
// error naming the file: the operator deletes it to start over.
func loadSeq(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPersist, err)
	}
	return parseSeq(path, b)
}

// parseSeq decodes the content of a ringseq file named path.
func parseSeq(path string, b []byte) (uint64, error) {
	if len(b) > 64 {
		return 0, fmt.Errorf("%w: %s: %d bytes, not a sequence number (delete it to start over)", ErrPersist, path, len(b))
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w (delete it to start over)", ErrPersist, path, err)
	}
	if seq > MaxPersistedSeq {
		return 0, fmt.Errorf("%w: %s: ring sequence %d is above the valid range (at most %d; delete it to start over)", ErrPersist, path, seq, uint64(MaxPersistedSeq))
	}
	return seq, nil
}

// storeSeq writes seq durably (internal/durable: a crash leaves either the
// old or the new value, never a torn file). A value above MaxPersistedSeq
// is refused, not persisted.
func storeSeq(path string, seq uint64) error {
	if seq > MaxPersistedSeq {
		return fmt.Errorf("%w: ring sequence %d is above the valid range (at most %d)", ErrPersist, seq, uint64(MaxPersistedSeq))
	}
	if err := durable.WriteFile(path, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	return nil
}
