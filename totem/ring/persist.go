package ring

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ringmaster/totem"
)

// seqFile is where a node keeps its highest ring sequence number, one file
// per node ID so several nodes may share a state directory in tests.
func seqFile(dir string, node totem.NodeID) string {
	return filepath.Join(dir, "ringseq."+strconv.FormatUint(uint64(node), 10))
}

// loadSeq reads the persisted ring sequence number (0 when none yet).
func loadSeq(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPersist, err)
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrPersist, path, err)
	}
	return seq, nil
}

// storeSeq writes seq durably: temporary file, fsync, rename over the old
// one, fsync of the directory. A crash leaves either the old or the new
// value, never a torn file.
func storeSeq(path string, seq uint64) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(strconv.FormatUint(seq, 10) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: fsync: %w", ErrPersist, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrPersist, dir, err)
	}
	return nil
}
