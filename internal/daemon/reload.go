package daemon

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"ringmaster/confdb/store"
	cdbwire "ringmaster/confdb/wire"
	"ringmaster/config"
	"ringmaster/internal/events"
)

// What a reload of this node alone (SIGHUP) does with each change of the
// file. It applies only what cannot break the cluster's agreement; the
// cluster-wide reload (`ringctl config reload`, cluster_reload.go, with
// its own table) also applies totem timings, the node list and quorum
// options, on every member at the same point of the ordered stream:
//
//	change                              reload
//	----------------------------------  ---------------------------------------
//	file does not validate              rejected; the running configuration stays
//	local node gone from the node list  rejected
//	totem.crypto_cipher                 rejected: nodes on different ciphers
//	                                    cannot talk; restart every node
//	a keyfile unusable                  rejected (the checks of --check)
//	totem.keyfile, previous_keyfiles    applied: the ring's SetKeys (the files
//	                                    are re-read even when the names stay)
//	ipc.allowed_uids, ipc.allowed_gids  applied: new connections are checked
//	logging.*                           applied: level, outputs, format (all
//	                                    or, when an output cannot be opened,
//	                                    none: logged, the running [logging]
//	                                    stays, reported as pending)
//	anything else                       pending: logged, listed in `ringctl
//	                                    status --json` (pending_restart) and
//	                                    cmap runtime.config.pending_restart;
//	                                    applied by the next start (timings,
//	                                    node list, quorum options: also by
//	                                    the cluster-wide reload)
//
// The running configuration (Daemon.Config) holds only what is in effect,
// so `ringctl status` and cmap's totem.* and runtime.config.* keys, both
// read from it, always report the running values and agree.

// PendingRestartKey is the cmap key listing the changed settings (dotted
// keys, space-separated, "" when none) that wait for a restart.
const PendingRestartKey = "runtime.config.pending_restart"

// ErrReload wraps the reasons a reload is refused.
var ErrReload = errors.New("reload rejected")

// applyReloadable returns the configuration that runs after reloading
// file over running: running's settings, with those a reload can apply
// taken from file.
func applyReloadable(running, file *config.Config) *config.Config {
	c := *running
	c.Totem.Keyfile = file.Totem.Keyfile
	c.Totem.PreviousKeyfiles = file.Totem.PreviousKeyfiles
	c.IPC.AllowedUIDs = file.IPC.AllowedUIDs
	c.IPC.AllowedGIDs = file.IPC.AllowedGIDs
	c.Logging = file.Logging
	return &c
}

// Reload re-reads the configuration file and applies what can change
// while running (see the table above). A refused reload is logged and
// returned, and changes nothing.
func (d *Daemon) Reload() error {
	reject := func(err error) error {
		err = fmt.Errorf("%w: the running configuration stays: %w", ErrReload, err)
		d.log.Error(err.Error())
		d.obs.events.Record(events.ConfigReload, "configuration reload refused", events.Fields{"error": err.Error()})
		return err
	}
	file, err := d.opt.loadConfig()
	if err != nil {
		return reject(err)
	}
	running := d.Config()
	if file.NodeByID(int(d.node)) == nil {
		return reject(fmt.Errorf("node %d is no longer in the node list", d.node))
	}
	if a, b := running.Totem.CryptoCipher, file.Totem.CryptoCipher; a != b {
		return reject(fmt.Errorf("totem.crypto_cipher cannot change by reload (running %q, file %q): "+
			"nodes on different ciphers cannot talk to each other; restart every node to change it", a, b))
	}
	next := applyReloadable(running, file)
	keys, err := next.LoadKeys()
	if err != nil {
		return reject(err)
	}
	if next.Totem.CryptoCipher != "none" {
		// With the keys a cluster-wide reload pre-loaded or keeps in
		// their grace (keyState): a SIGHUP must not drop them.
		if err := d.keys.change(d.ring.SetKeys, func(k *keyState) { k.keys = keys }); err != nil {
			return reject(fmt.Errorf("new keys refused: %w", err))
		}
	} else {
		d.keys.set(keys)
	}
	if srv := d.ipcServer(); srv != nil {
		srv.SetAllowed(next.IPC.AllowedUIDs, next.IPC.AllowedGIDs)
	}
	loggingKept := false
	if d.opt.OnReloadLogging != nil {
		if err := d.opt.OnReloadLogging(next.Logging); err != nil {
			d.log.Error("reload: [logging] not applied; the running logging stays", zap.Error(err))
			next.Logging, loggingKept = running.Logging, true
		}
	}
	var applied []config.Change
	var pendingKeys []string
	// Under the executive's lock, as status snapshots and cmap reads are:
	// nobody sees the new configuration without the cmap keys that
	// report it.
	d.exec.Do(func() {
		if cur := d.Config(); cur != running {
			// A cluster-wide reload committed while this one read
			// the file (its commit runs under the executive's lock):
			// what it applied stays, and this reload's own changes
			// go on top of it.
			logging := cur.Logging
			running, next = cur, applyReloadable(cur, file)
			if loggingKept {
				next.Logging = logging
			}
		}
		applied = config.Diff(running, next)
		for _, c := range config.Diff(next, file) {
			pendingKeys = append(pendingKeys, c.Key)
			d.log.Warn("reload: this change takes effect only after a restart",
				zap.String("key", c.Key), zap.String("running", c.Old), zap.String("file", c.New))
		}
		d.installConfig(running, next, pendingKeys)
	})
	appliedKeys := []string{}
	for _, c := range applied {
		appliedKeys = append(appliedKeys, c.Key)
	}
	// The event log writes the log line (with event=config_reload).
	d.obs.events.Record(events.ConfigReload, "configuration reloaded", events.Fields{
		"applied": appliedKeys, "pending_restart": append([]string{}, pendingKeys...)})
	return nil
}

// installConfig makes next the running configuration and publishes it in
// cmap. Call it under the executive's lock.
func (d *Daemon) installConfig(running, next *config.Config, pendingKeys []string) {
	d.cfgMu.Lock()
	d.cfg = next
	d.pending = pendingKeys
	d.cfgMu.Unlock()
	if d.cmap != nil {
		publishConfig(d.cmap, ConfigEntries(running, d.node), ConfigEntries(next, d.node))
		publishPending(d.cmap, pendingKeys)
	}
}

// PendingRestart lists the settings changed in the file that take effect
// only after a restart (dotted keys, in file order).
func (d *Daemon) PendingRestart() []string {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return slices.Clone(d.pending)
}

// publishConfig brings cmap's configuration keys from old to new: changed
// keys are set and keys that are gone deleted. Keys whose value stays are
// left alone, so a value a client wrote (quorum.expected_votes, say) is
// not overwritten by an unrelated reload.
func publishConfig(s *store.Store, old, new []cdbwire.Entry) {
	was := map[string]cdbwire.Value{}
	for _, e := range old {
		was[e.Key] = e.Value
	}
	for _, e := range new {
		if v, ok := was[e.Key]; !ok || v != e.Value {
			_ = s.Set(e.Key, e.Value)
		}
		delete(was, e.Key)
	}
	for k := range was {
		_ = s.Delete(k)
	}
}

func publishPending(s *store.Store, keys []string) {
	_ = s.Set(PendingRestartKey, cdbwire.String(strings.Join(keys, " ")))
}
