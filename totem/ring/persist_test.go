package ring

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/totem/wire"
)

func TestSeqFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := seqFile(dir, 3)
	seq, err := loadSeq(p)
	require.NoError(t, err)
	assert.Zero(t, seq, "no file yet")
	for _, want := range []uint64{1234, 1 << 48, 1<<64 - 1} {
		require.NoError(t, storeSeq(p, want))
		seq, err = loadSeq(p)
		require.NoError(t, err)
		assert.Equal(t, want, seq)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file stays")
}

// TestSeqFileRejectsGarbage: a file that is not one decimal number is an
// error naming the file, not a zero.
func TestSeqFileRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	p := seqFile(dir, 1)
	for _, content := range []string{
		"18446744073709551616\n", "-4\n", "", "12 13\n", "0x10", strings.Repeat("1", 65),
	} {
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		_, err := loadSeq(p)
		require.Error(t, err, "%q", content)
		assert.True(t, errors.Is(err, ErrPersist))
		assert.Contains(t, err.Error(), p, "the error names the file")
	}
	assert.Equal(t, "ringseq.7", filepath.Base(seqFile(dir, 7)))
	assert.Equal(t, "ringseq.7", SeqFileName(7))
}

// TestRingSeqAboveRangeRefused: a persisted ring sequence above the
// protocol's range (a forged join's 2^64-1, written before seqs were
// range-checked) is refused at load, naming the file.
func TestRingSeqAboveRangeRefused(t *testing.T) {
	p := seqFile(t.TempDir(), 1)
	for _, seq := range []uint64{wire.MaxRingSeq + 1, 1<<64 - 1} {
		require.NoError(t, storeSeq(p, seq))
		got, err := loadSeq(p)
		require.NoError(t, err)
		err = checkPersistedSeq(p, got)
		require.ErrorIs(t, err, ErrPersist)
		assert.Contains(t, err.Error(), p)
	}
	require.NoError(t, checkPersistedSeq(p, wire.MaxRingSeq))
}

// FuzzLoadSeq: the ringseq loader rejects, never panics on, any content,
// and what it accepts survives a store and load.
func FuzzLoadSeq(f *testing.F) {
	f.Add([]byte("4\n"))
	f.Add([]byte("281474976710657\n"))
	f.Add([]byte("18446744073709551615"))
	f.Add([]byte(" 12 \n"))
	f.Add([]byte{0xff, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, err := parseSeq("ringseq.1", b)
		if err != nil {
			return
		}
		p := seqFile(dir, 1)
		require.NoError(t, storeSeq(p, seq))
		got, err := loadSeq(p)
		require.NoError(t, err)
		require.Equal(t, seq, got)
		if err := checkPersistedSeq(p, got); (err == nil) != (got <= wire.MaxRingSeq) {
			t.Fatalf("ring seq %d: range check says %v", got, err)
		}
	})
}
