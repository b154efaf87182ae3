package votequorum

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/votequorum/calc"
)

// sampleState is a state as a three-node cluster persists it.
func sampleState() calc.Persisted {
	var p calc.Persisted
	_ = json.Unmarshal([]byte(`{"expected_votes_tracking":5,"lineage":{"ring":{"rep":1,"seq":40},"step":3,"expected_votes":5,
		"voters":[{"nodeid":1,"votes":2},{"nodeid":2,"votes":1},{"nodeid":4,"votes":2}],"members":[1,2]}}`), &p)
	return p
}

// TestStateFileRejectsAbsurd: values no running cluster can produce are
// refused, naming the file, instead of pinning the node.
func TestStateFileRejectsAbsurd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	for _, content := range []string{
		`{"version":1,"expected_votes_tracking":4294967295,"lineage":{}}`,
		`{"version":1,"lineage":{"ring":{"rep":1,"seq":18446744073709551615},"expected_votes":3}}`,
		`{"version":1,"lineage":{"ring":{"rep":1,"seq":8},"expected_votes":4000000000}}`,
		`{"version":1,"lineage":{"ring":{"rep":1,"seq":8},"expected_votes":3,"voters":[{"nodeid":2,"votes":1},{"nodeid":1,"votes":1}]}}`,
		`{"version":1,"lineage":{"ring":{"rep":1,"seq":8},"expected_votes":3,"voters":[{"nodeid":1,"votes":256}]}}`,
		`{"version":1,"lineage":{"ring":{"rep":1,"seq":8},"expected_votes":3,"members":[0]}}`,
		`{"version":1,"lineage":{"ring":{"rep":0,"seq":8},"expected_votes":3}}`,
		`{"version":2}`,
		``,
	} {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		_, err := LoadState(dir)
		require.Error(t, err, content)
		assert.Contains(t, err.Error(), path, "the error names the file")
	}
}

// TestSaveStateDurable: the file is replaced whole and no temporary file
// stays behind.
func TestSaveStateDurable(t *testing.T) {
	dir := t.TempDir()
	want := sampleState()
	require.NotEmpty(t, want.Lineage.Voters)
	require.NoError(t, SaveState(dir, calc.Persisted{ExpectedVotesTracking: 3}))
	require.NoError(t, SaveState(dir, want))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.Equal(t, StateFile, ents[0].Name())
	got, err := LoadState(dir)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.Error(t, SaveState(filepath.Join(dir, "missing"), want), "errors are returned")
}

// FuzzLoadState: the votequorum.json loader rejects, never panics on, any
// content, and what it accepts saves and loads back equal.
func FuzzLoadState(f *testing.F) {
	b, _ := json.Marshal(stateFile{Version: 1, Persisted: sampleState()})
	f.Add(b)
	f.Add([]byte(`{"version":1,"lineage":{}}`))
	f.Add([]byte(`{"version":1,"lineage":{"ring":{"rep":1,"seq":18446744073709551615}}}`))
	f.Add([]byte(`{"version":1,"lineage":{"voters":[{"nodeid":2},{"nodeid":1}]}}`))
	f.Add([]byte(`[`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseState(b)
		if err != nil {
			return
		}
		require.NoError(t, SaveState(dir, p))
		got, err := LoadState(dir)
		require.NoError(t, err, "a state it accepted does not load back")
		again, _ := json.Marshal(got)
		orig, _ := json.Marshal(p)
		require.JSONEq(t, string(orig), string(again))
	})
}

// TestStateFile: a missing file is the zero state; what is saved loads
// back; a file that does not decode is an error naming it.
func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadState(dir)
	require.NoError(t, err)
	assert.Equal(t, calc.Persisted{}, p)
	want := calc.Persisted{ExpectedVotesTracking: 5, Lineage: sampleState().Lineage}
	require.NoError(t, SaveState(dir, want))
	got, err := LoadState(dir)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, os.WriteFile(dir+"/"+StateFile, []byte("{"), 0o600))
	_, err = LoadState(dir)
	assert.ErrorContains(t, err, "unreadable")
}
