package durable

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashEnv makes the test binary a helper process: it writes new content
// to the file named by crashFileEnv and exits with crashCode right after the
// step given here, as a process killed there would.
const (
	crashEnv     = "DURABLE_CRASH_STEP"
	crashFileEnv = "DURABLE_CRASH_FILE"
	crashCode    = 77
)

var (
	oldContent = []byte("old content: the file as it was before\n")
	newContent = bytes.Repeat([]byte("new content, much longer than the old one\n"), 2000)
)

func TestMain(m *testing.M) {
	if s := os.Getenv(crashEnv); s != "" {
		step, _ := strconv.Atoi(s)
		afterStep = func(got Step) {
			if got == Step(step) {
				os.Exit(crashCode)
			}
		}
		if err := WriteFile(os.Getenv(crashFileEnv), newContent, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrashAtEachStep kills a writer after each step of WriteFile and
// checks that the file holds the old or the new content, never an empty or
// partial one, and that CleanTemps removes what the crash left behind.
func TestCrashAtEachStep(t *testing.T) {
	for step := StepCreate; step <= StepDirSync; step++ {
		t.Run(fmt.Sprint(step), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			require.NoError(t, WriteFile(path, oldContent, 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "other.tmp1"), nil, 0o600))

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+strconv.Itoa(int(step)), crashFileEnv+"="+path)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "helper did not crash: %s", out)
			require.Equal(t, crashCode, ee.ExitCode(), "helper: %s", out)

			got, err := os.ReadFile(path)
			require.NoError(t, err)
			if step < StepRename {
				assert.Equal(t, oldContent, got, "crash before the rename keeps the old content")
			} else {
				assert.Equal(t, newContent, got, "crash after the rename shows the new content")
			}

			removed, err := CleanTemps(dir, "state.json")
			require.NoError(t, err)
			if step < StepRename {
				assert.Len(t, removed, 1, "the crash left one temporary file")
			} else {
				assert.Empty(t, removed)
			}
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{"other.tmp1", "state.json"}, names, "only our own temporary files are removed")
		})
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, WriteFile(path, []byte("a"), 0o640))
	require.NoError(t, WriteFile(path, []byte("bc"), 0o640))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "bc", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	err = WriteFile(filepath.Join(dir, "missing", "f"), []byte("a"), 0o600)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "missing", "f"))
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		"ringseq.1.tmp123":     true,
		"ringseq.1.tmp":        false,
		"ringseq.1.tmpx1":      false,
		"ringseq.12.tmp123":    false,
		"ringseq.1":            false,
		"xringseq.1.tmp123":    false,
		"ringseq.1.tmp123.bak": false,
	} {
		assert.Equal(t, want, IsTemp(name, "ringseq.1"), name)
	}
}
