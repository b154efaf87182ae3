package votequorum

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the file in state_dir holding what votequorum keeps across
// restarts: the highest expected votes ever seen (corosync's
// /var/lib/corosync/ev_tracking) and the quorum lineage (see the package
// doc). Delete it to let a node start over, e.g. after moving it to
// another cluster or shrinking the node list.
const StateFile = "votequorum.json"

type stateFile struct {
	Version int `json:"version"`
	Persisted
}

// LoadState reads the persisted state of dir (zero when the file does not
// exist yet).
func LoadState(dir string) (Persisted, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Persisted{}, nil
	}
	if err != nil {
		return Persisted{}, fmt.Errorf("votequorum: state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
		return Persisted{}, fmt.Errorf("votequorum: state file %s is unreadable (delete it to start over): %v", path, err)
	}
	return st.Persisted, nil
}

// SaveState writes the state atomically (temp file, fsync, rename), so a
// crash leaves either the old or the new state.
func SaveState(dir string, p Persisted) error {
	b, _ := json.Marshal(stateFile{Version: 1, Persisted: p})
	f, err := os.CreateTemp(dir, StateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("votequorum: save state: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("votequorum: save state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, StateFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("votequorum: save state: %w", err)
	}
	return nil
}
