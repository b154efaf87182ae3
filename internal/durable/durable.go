// Package durable writes the files ringd keeps (the ring's sequence number,
// votequorum.json, LVS state) so that a crash at any moment leaves either
// the old or the new content on disk, never an empty or partial file.
//
// WriteFile goes through four steps, each of which may be the last one a
// crashing process completes:
//
//	step     on disk after a crash here           the file reads
//	create   NAME.tmpDIGITS (empty)                old content
//	write    NAME.tmpDIGITS (new, maybe unsynced)  old content
//	sync     NAME.tmpDIGITS (new, on disk)         old content
//	rename   NAME (new; the directory unsynced)    new content (old after
//	                                               a power loss)
//	dirsync  NAME (new)                            new content
//
// The temporary files left by a crash in the first three steps are named
// NAME.tmpDIGITS; CleanTemps removes exactly those, and ringd calls it for
// its own files at startup.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Step names a point of WriteFile after which a process may die.
type Step int

// The steps of WriteFile, in order.
const (
	StepCreate Step = iota + 1
	StepWrite
	StepSync
	StepRename
	StepDirSync
)

func (s Step) String() string {
	if s >= StepCreate && s <= StepDirSync {
		return [...]string{"create", "write", "sync", "rename", "dirsync"}[s-1]
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// afterStep, when set, is called after each step. Only this package's
// crash test sets it (in a helper process that exits at a chosen step);
// nothing else may.
var afterStep func(Step)

func hook(s Step) {
	if afterStep != nil {
		afterStep(s)
	}
}

// tempInfix separates a file's name from the random digits of its
// temporary files: "votequorum.json.tmp1234567".
const tempInfix = ".tmp"

// WriteFile replaces path with data durably: write a temporary file in the
// same directory, fsync it, set perm, rename it over path, fsync the
// directory. Every error is returned (wrapped, naming the file); on error
// the temporary file is removed and path keeps its old content.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	hook(StepCreate)
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, werr := tmp.Write(data)
	hook(StepWrite)
	var serr, perr error
	if werr == nil {
		perr = tmp.Chmod(perm)
		serr = tmp.Sync()
	}
	cerr := tmp.Close()
	if err := errors.Join(werr, perr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	hook(StepSync)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed = true
	hook(StepRename)
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	hook(StepDirSync)
	return nil
}

// SyncDir fsyncs a directory, making the renames and removals in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name (a base name) is a temporary file WriteFile
// makes for a file named target: target + ".tmp" + digits.
func IsTemp(name, target string) bool {
	rest, ok := strings.CutPrefix(name, target+tempInfix)
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CleanTemps removes from dir the temporary files that a WriteFile of
// each of names (base names) left behind when its process died. Only those
// are touched: other files, and temporary files of other names, stay. It
// returns the paths it removed. Call it only while no other process writes
// these names.
func CleanTemps(dir string, names ...string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean temporary files: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		for _, n := range names {
			if !IsTemp(e.Name(), n) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			} else {
				removed = append(removed, p)
			}
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("clean temporary files: %w", err)
	}
	return removed, nil
}
