package store

import (
	"fmt"
	"strconv"
	"strings"

	"ringmaster/confdb/wire"
)

// Policy decides which client writes are allowed, following corosync's
// cmap rules (exec/main.c set_icmap_ro_keys_flag, votequorum's read-only
// quorum keys):
//
//   - runtime.* and stats.* are the daemon's: read-only, except the
//     stats.clear.* triggers, which reset the statistics.
//   - internal_configuration.* and uidgid.config.* are read-only.
//   - Configuration keys (totem.*, nodelist.*, quorum.*, logging.*) are
//     writable in memory, except those a running node cannot change
//     (crypto, transport, cluster name, MTU, node identity, the quorum
//     features read only at start). A configuration key keeps its type
//     and numeric timings keep the bounds corosync.toml enforces; writes
//     do not retune the running ring (they are read by whatever tracks
//     them, as in corosync).
//   - Any other key may be created, changed and deleted freely, like
//     corosync's application keys.
type Policy struct {
	// LocalNodePos is the local node's index in the node list (its
	// ring0_addr is read-only); -1 when unknown.
	LocalNodePos int
	// configTypes are the types of the keys loaded from the
	// configuration: a write must keep the type.
	configTypes map[string]wire.Type
}

// NewPolicy is the policy of a node that started with entries (the keys
// loaded from the configuration): configuration keys keep their type, and
// nodelist.local_node_pos names the node's own entry in the node list.
func NewPolicy(entries []wire.Entry) Policy {
	p := Policy{LocalNodePos: -1, configTypes: map[string]wire.Type{}}
	for _, e := range entries {
		if !strings.HasPrefix(e.Key, "runtime.") {
			p.configTypes[e.Key] = e.Value.Type()
		}
		if e.Key == "nodelist.local_node_pos" {
			n, _ := e.Value.Uint()
			p.LocalNodePos = int(n)
		}
	}
	return p
}

var roPrefixes = []string{"runtime.", "stats.", "internal_configuration.", "uidgid.config."}

// writableExceptions are keys under a read-only prefix that clients may
// write (triggers).
var writableExceptions = []string{"stats.clear."}

var roKeys = map[string]bool{
	"totem.crypto_cipher": true, "totem.crypto_hash": true, "totem.secauth": true,
	"totem.ip_version": true, "totem.rrp_mode": true, "totem.transport": true,
	"totem.cluster_name": true, "totem.netmtu": true, "totem.threads": true,
	"totem.version": true, "totem.nodeid": true, "totem.clear_node_high_bit": true,
	"totem.keyfile": true, "totem.previous_keyfiles": true,
	"qb.ipc_type": true, "config.reload_in_progress": true, "config.totemconfig_reload_in_progress": true,
	"nodelist.local_node_pos": true,
	"quorum.allow_downscale":  true, "quorum.wait_for_all": true, "quorum.last_man_standing": true,
	"quorum.last_man_standing_window": true, "quorum.expected_votes_tracking": true,
	"quorum.auto_tie_breaker": true, "quorum.auto_tie_breaker_node": true,
}

// bounds are the numeric limits of configuration keys (the same as
// corosync.toml's validation).
var bounds = map[string][2]int64{
	"totem.token":                               {10, 1<<31 - 1},
	"totem.token_coefficient":                   {0, 1<<31 - 1},
	"totem.token_retransmits_before_loss_const": {1, 1<<31 - 1},
	"totem.token_retransmit":                    {0, 1<<31 - 1},
	"totem.hold":                                {0, 1<<31 - 1},
	"totem.join":                                {1, 1<<31 - 1},
	"totem.send_join":                           {0, 1<<31 - 1},
	"totem.consensus":                           {0, 1<<31 - 1},
	"totem.merge":                               {1, 1<<31 - 1},
	"totem.downcheck":                           {1, 1<<31 - 1},
	"totem.fail_recv_const":                     {1, 1<<31 - 1},
	"totem.seqno_unchanged_const":               {1, 1<<31 - 1},
	"totem.miss_count_const":                    {1, 1<<31 - 1},
	"totem.window_size":                         {1, 1<<31 - 1},
	"totem.max_messages":                        {1, 1<<31 - 1},
	"totem.port":                                {1, 65535},
	"totem.ttl":                                 {1, 255},
	"quorum.expected_votes":                     {1, 1<<31 - 1},
	"quorum.two_node":                           {0, 1},
}

// CheckWrite validates a client's write of v to key (old is the current
// value, zero when the key does not exist).
func (p *Policy) CheckWrite(key string, old wire.Value, v wire.Value) error {
	if err := wire.CheckKey(key); err != nil {
		return err
	}
	if !v.Type().Valid() {
		return fmt.Errorf("%w: %s: no type", wire.ErrBadValue, key)
	}
	if err := p.checkAccess(key); err != nil {
		return err
	}
	if t, ok := p.configTypes[key]; ok && v.Type() != t {
		return fmt.Errorf("%w: %s is a %s, not a %s", wire.ErrBadValue, key, t, v.Type())
	}
	name := key
	if rest, ok := strings.CutPrefix(key, "nodelist.node."); ok {
		if _, field, ok := strings.Cut(rest, "."); ok {
			name = "nodelist.node.N." + field
		}
	}
	lim, ok := bounds[name]
	switch name {
	case "nodelist.node.N.quorum_votes":
		lim, ok = [2]int64{0, 255}, true
	case "nodelist.node.N.nodeid":
		lim, ok = [2]int64{1, 0x7fffffff}, true
	}
	if ok {
		n, isInt := v.Integer()
		if !isInt {
			return fmt.Errorf("%w: %s must be an integer", wire.ErrBadValue, key)
		}
		if n < lim[0] || n > lim[1] {
			return fmt.Errorf("%w: %s must be %d-%d, got %d", wire.ErrBadValue, key, lim[0], lim[1], n)
		}
	}
	return nil
}

// CheckDelete validates a client's delete of key.
func (p *Policy) CheckDelete(key string) error {
	if err := wire.CheckKey(key); err != nil {
		return err
	}
	return p.checkAccess(key)
}

func (p *Policy) checkAccess(key string) error {
	if roKeys[key] {
		return fmt.Errorf("%w: %s cannot be changed on a running node", wire.ErrReadOnly, key)
	}
	if p.LocalNodePos >= 0 && key == "nodelist.node."+strconv.Itoa(p.LocalNodePos)+".ring0_addr" {
		return fmt.Errorf("%w: %s is this node's own address", wire.ErrReadOnly, key)
	}
	for _, w := range writableExceptions {
		if strings.HasPrefix(key, w) {
			return nil
		}
	}
	for _, ro := range roPrefixes {
		if strings.HasPrefix(key, ro) {
			return fmt.Errorf("%w: %s (%s* is maintained by ringd)", wire.ErrReadOnly, key, ro)
		}
	}
	return nil
}
