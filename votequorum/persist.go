package votequorum

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ringmaster/internal/durable"
	"ringmaster/totem"
	"ringmaster/votequorum/calc"
	"ringmaster/votequorum/wire"
)

// StateFile is the file in state_dir holding what votequorum keeps across
// restarts: the highest expected votes ever seen (corosync's
// /var/lib/corosync/ev_tracking) and the quorum lineage (see the package
// doc). Delete it to let a node start over, e.g. after moving it to
// another cluster or shrinking the node list.
const StateFile = "votequorum.json"

type stateFile struct {
	Version int `json:"version"`
	calc.Persisted
}

// Bounds of a state file. A file beyond them was corrupted or forged, and
// loading it could pin expected votes out of reach or number lineages past
// every real ring, so LoadState refuses it and names the file.
const (
	// maxStateSize is far above any real file (a few KiB at 1024 nodes).
	maxStateSize = 1 << 20
	// maxStateSeq is the highest ring sequence a lineage may carry, the
	// protocol's bound on ring sequence numbers (totem/wire.MaxRingSeq).
	maxStateSeq = 1 << 48
	// maxStateNodes bounds the voters and members of a lineage, as the
	// wire's node info bounds its lists.
	maxStateNodes = wire.MaxNodes
	// maxStateVotes: at most maxStateNodes nodes of at most 255 votes each.
	maxStateVotes = 255 * maxStateNodes
)

// LoadState reads the persisted state of dir (zero when the file does not
// exist yet). A file that does not decode, or holds values out of range, is
// an error naming the file; deleting it lets the node start over.
func LoadState(dir string) (calc.Persisted, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return calc.Persisted{}, nil
	}
	if err != nil {
		return calc.Persisted{}, fmt.Errorf("votequorum: state: %w", err)
	}
	p, err := parseState(b)
	if err != nil {
		return calc.Persisted{}, fmt.Errorf("votequorum: state file %s is unreadable (delete it to start over): %w", path, err)
	}
	return p, nil
}

// parseState decodes and range-checks the content of a state file.
func parseState(b []byte) (calc.Persisted, error) {
	if len(b) > maxStateSize {
		return calc.Persisted{}, fmt.Errorf("%d bytes, at most %d", len(b), maxStateSize)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return calc.Persisted{}, err
	}
	if st.Version != 1 {
		return calc.Persisted{}, fmt.Errorf("version %d, want 1", st.Version)
	}
	p := st.Persisted
	if p.ExpectedVotesTracking > maxStateVotes {
		return calc.Persisted{}, fmt.Errorf("expected_votes_tracking %d is above %d", p.ExpectedVotesTracking, maxStateVotes)
	}
	l := &p.Lineage
	if l.Expected > maxStateVotes {
		return calc.Persisted{}, fmt.Errorf("lineage expected_votes %d is above %d", l.Expected, maxStateVotes)
	}
	if l.Ring.Seq > maxStateSeq {
		return calc.Persisted{}, fmt.Errorf("lineage ring sequence %d is above %d", l.Ring.Seq, uint64(maxStateSeq))
	}
	if !validNode(l.Ring.Rep) && l.Ring != (totem.RingID{}) {
		return calc.Persisted{}, fmt.Errorf("lineage ring representative %d is not a node ID", l.Ring.Rep)
	}
	if len(l.Voters) > maxStateNodes || len(l.Members) > maxStateNodes {
		return calc.Persisted{}, fmt.Errorf("lineage with %d voters and %d members, at most %d", len(l.Voters), len(l.Members), maxStateNodes)
	}
	for i, v := range l.Voters {
		if !validNode(v.ID) || v.Votes > 255 || (i > 0 && v.ID <= l.Voters[i-1].ID) {
			return calc.Persisted{}, fmt.Errorf("lineage voter %d (node %d, %d votes): node IDs must be valid and sorted, votes 0-255", i, v.ID, v.Votes)
		}
	}
	for i, m := range l.Members {
		if !validNode(m) || (i > 0 && m <= l.Members[i-1]) {
			return calc.Persisted{}, fmt.Errorf("lineage member %d (node %d): node IDs must be valid and sorted", i, m)
		}
	}
	return p, nil
}

// validNode: node IDs are 1-2147483647, as the configuration allows.
func validNode(id totem.NodeID) bool { return id >= 1 && id <= 0x7fffffff }

// SaveState writes the state durably (internal/durable: temporary file,
// fsync, rename, fsync of the directory), so a crash leaves either the old
// or the new state; the lineage in it is the split-brain defence.
func SaveState(dir string, p calc.Persisted) error {
	b, err := json.Marshal(stateFile{Version: 1, Persisted: p})
	if err != nil {
		return fmt.Errorf("votequorum: save state: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, StateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("votequorum: save state: %w", err)
	}
	return nil
}
