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

// StateFileNames are the base names of the files in state_dir that the
// ring of node keeps (its sequence number and its envelope epoch); ringd's
// startup removes the temporary files a crash left of them.
func StateFileNames(node totem.NodeID) []string {
	return []string{SeqFileName(node), filepath.Base(epochFile("", node))}
}

// seqFile is where a node keeps its highest ring sequence number, one file
// per node ID so several nodes may share a state directory in tests.
func seqFile(dir string, node totem.NodeID) string {
	return filepath.Join(dir, SeqFileName(node))
}

// loadSeq reads a number file of state_dir (0 when it does not exist yet):
// the ring sequence number, and the envelope epoch. A file that does not
// hold one decimal number is an error naming the file, to be deleted to
// start over. The ring's range for its sequence number (wire.MaxRingSeq)
// is checked by the caller that knows which number it reads.
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

// parseSeq decodes the content of a number file named path.
func parseSeq(path string, b []byte) (uint64, error) {
	if len(b) > 64 {
		return 0, fmt.Errorf("%w: %s: %d bytes, not a number (delete it to start over)", ErrPersist, path, len(b))
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w (delete it to start over)", ErrPersist, path, err)
	}
	return seq, nil
}

// storeSeq writes a number file durably (internal/durable: a crash leaves
// either the old or the new value, never a torn file).
func storeSeq(path string, seq uint64) error {
	if err := durable.WriteFile(path, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	return nil
}
