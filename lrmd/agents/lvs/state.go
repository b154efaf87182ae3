package lvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ringmaster/internal/durable"
)

// DefaultRunDir is the runtime directory; LVS state files live in
// RunDir/lvs/.
const DefaultRunDir = "/run/ringmaster"

// State is the small per-service file the agent keeps so `ringctl lvs
// list` can show configured weights and real-server health next to what it
// reads back from the kernel. It is informational: the kernel is the truth
// for what is installed.
type State struct {
	Service     string        `json:"service"` // Key.String()
	Backend     string        `json:"backend"`
	Scheduler   string        `json:"scheduler"`
	Method      string        `json:"method"`
	Check       string        `json:"check"`
	Checking    bool          `json:"checking"` // a long-running lrmd is checking (false after a one-shot start)
	RealServers []RealServer  `json:"realservers"`
	Sorry       string        `json:"sorry_server,omitempty"`
	SorryActive bool          `json:"sorry_active,omitempty"`
	Updated     time.Time     `json:"updated"`
	PID         int           `json:"pid"`
	Interval    time.Duration `json:"check_interval,omitempty"`
}

// RealServer is one real server's configured weight and health.
type RealServer struct {
	Addr   string    `json:"addr"`
	Weight int       `json:"weight"`
	Health string    `json:"health"` // up, down, unknown
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitempty"`
}

func stateDir(runDir string) string {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return filepath.Join(runDir, "lvs")
}

func statePath(runDir string, k Key) string {
	return filepath.Join(stateDir(runDir), k.ID()+".json")
}

// WriteState writes the state file durably (internal/durable: temporary
// file, fsync, rename, fsync of the directory), so readers never see a
// half-written file and a crash leaves the old or the new state.
func WriteState(runDir string, k Key, st State) error {
	dir := stateDir(runDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(statePath(runDir, k), append(b, '\n'), 0o644)
}

// ReadState reads one service's state file.
func ReadState(runDir string, k Key) (State, error) {
	var st State
	b, err := os.ReadFile(statePath(runDir, k))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", statePath(runDir, k), err)
	}
	return st, nil
}

// ReadStates reads every state file, sorted by service. A missing
// directory is no error.
func ReadStates(runDir string) ([]State, error) {
	ents, err := os.ReadDir(stateDir(runDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(stateDir(runDir), e.Name()))
		if err != nil {
			continue
		}
		var st State
		if json.Unmarshal(b, &st) == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out, nil
}

// RemoveState deletes a service's state file; a missing one is no error.
func RemoveState(runDir string, k Key) error {
	err := os.Remove(statePath(runDir, k))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
