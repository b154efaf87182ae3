package ring

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeqFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := seqFile(dir, 3)
	seq, err := loadSeq(p)
	require.NoError(t, err)
	assert.Zero(t, seq, "no file yet")
	require.NoError(t, storeSeq(p, 1234))
	seq, err = loadSeq(p)
	require.NoError(t, err)
	assert.Equal(t, uint64(1234), seq)
	require.NoError(t, storeSeq(p, MaxPersistedSeq))
	seq, err = loadSeq(p)
	require.NoError(t, err)
	assert.Equal(t, uint64(MaxPersistedSeq), seq)
}

// TestSeqFileRejectsAbsurd: a sequence above the valid range (a forged
// join's 2^64-1, say) is neither persisted nor loaded, and the error names
// the file.
func TestSeqFileRejectsAbsurd(t *testing.T) {
	dir := t.TempDir()
	p := seqFile(dir, 1)
	require.NoError(t, storeSeq(p, 8))
	err := storeSeq(p, 1<<64-1)
	require.ErrorIs(t, err, ErrPersist)
	seq, err := loadSeq(p)
	require.NoError(t, err)
	assert.Equal(t, uint64(8), seq, "the refused value was not written")

	for _, content := range []string{
		strconv.FormatUint(1<<64-1, 10) + "\n",
		strconv.FormatUint(MaxPersistedSeq+1, 10),
		"-4\n", "", "12 13\n", "99999999999999999999999\n",
	} {
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		_, err := loadSeq(p)
		require.Error(t, err, "%q", content)
		assert.True(t, errors.Is(err, ErrPersist))
		assert.Contains(t, err.Error(), p, "the error names the file")
	}
	assert.Equal(t, "ringseq.7", filepath.Base(seqFile(dir, 7)))
}

// FuzzLoadSeq: the ringseq loader rejects, never panics on, any content,
// and what it accepts is in range and survives a store and load.
func FuzzLoadSeq(f *testing.F) {
	f.Add([]byte("4\n"))
	f.Add([]byte("281474976710656\n"))
	f.Add([]byte("18446744073709551615"))
	f.Add([]byte(" 12 \n"))
	f.Add([]byte{0xff, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, err := parseSeq("ringseq.1", b)
		if err != nil {
			return
		}
		if seq > MaxPersistedSeq {
			t.Fatalf("accepted %d, above %d", seq, uint64(MaxPersistedSeq))
		}
		p := seqFile(dir, 1)
		require.NoError(t, storeSeq(p, seq))
		got, err := loadSeq(p)
		require.NoError(t, err)
		require.Equal(t, seq, got)
	})
}
