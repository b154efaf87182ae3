package config

import (
	"fmt"
	"os"
	"strconv"

	"ringmaster/totem/crypto"
)

// LoadKeys reads the keys the configuration names: the keyfile (the key
// that seals) first, then the previous keyfiles (still accepted), checked
// as the ring will use them: readable regular files of crypto.MinKeySize to
// crypto.MaxKeySize bytes. With crypto_cipher "none" there are no keys.
//
// ringd's startup, its reload and `ringd --check` (with `ringctl config
// check`) all call it, so --check fails exactly when startup would. The
// error is an Errors naming the file, the line and the key of every
// unusable keyfile.
func (c *Config) LoadKeys() ([][]byte, error) {
	t := &c.Totem
	if t.CryptoCipher == "none" {
		return nil, nil
	}
	var (
		keys [][]byte
		errs Errors
	)
	for i, p := range append([]string{t.Keyfile}, t.PreviousKeyfiles...) {
		field := "totem.keyfile"
		if i > 0 {
			field = "totem.previous_keyfiles[" + strconv.Itoa(i-1) + "]"
		}
		b, err := readKey(p)
		if err != nil {
			// previous_keyfiles[i] takes the line of previous_keyfiles.
			errs = append(errs, c.fieldErr(field, "%v", err))
			continue
		}
		keys = append(keys, b)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return keys, nil
}

// readKey reads one keyfile, refusing what the ring would refuse.
func readKey(p string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("not set")
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w (create it with `ringctl keygen -o %s`)", err, p)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	// Bound the read before reading: a keyfile pointing at a huge file
	// must not be slurped.
	if fi.Size() < crypto.MinKeySize || fi.Size() > crypto.MaxKeySize {
		return nil, fmt.Errorf("%s: a key is %d-%d bytes, got %d (make one with `ringctl keygen -o %s`)", p, crypto.MinKeySize, crypto.MaxKeySize, fi.Size(), p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(b) < crypto.MinKeySize || len(b) > crypto.MaxKeySize {
		return nil, fmt.Errorf("%s: a key is %d-%d bytes, got %d (make one with `ringctl keygen -o %s`)", p, crypto.MinKeySize, crypto.MaxKeySize, len(b), p)
	}
	return b, nil
}

// keyWarnings lists keyfiles that work but are readable by group or
// others: anyone who can read the key can join and read the ring. Startup
// does not refuse them (corosync does not either), so --check only warns.
func (c *Config) keyWarnings() []string {
	if c.Totem.CryptoCipher == "none" {
		if len(c.Nodes) > 1 {
			return []string{fmt.Sprintf("%s:%d: totem.crypto_cipher: \"none\": datagrams are neither authenticated nor encrypted, so any host that reaches the ring port can join the ring; set crypto_cipher = \"aes256\" and a keyfile (ringctl keygen) unless the network is trusted", c.Path, c.line("totem.crypto_cipher"))}
		}
		return nil
	}
	var w []string
	for _, p := range append([]string{c.Totem.Keyfile}, c.Totem.PreviousKeyfiles...) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			w = append(w, fmt.Sprintf("%s:%d: totem.keyfile: %s is readable by group or others (mode %04o); chmod 0400 it", c.Path, c.line("totem.keyfile"), p, fi.Mode().Perm()))
		}
	}
	return w
}
