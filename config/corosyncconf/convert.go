package corosyncconf

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"ringmaster/config"
)

// ErrConvert is wrapped by errors that make a file impossible to convert.
var ErrConvert = errors.New("corosync.conf cannot be converted")

// Options tune a conversion.
type Options struct {
	// Name is the source file's name, used in warnings and errors.
	Name string
	// Resolve turns a ring address that is a host name into an IP address
	// (corosync resolves names; corosync.toml takes addresses). Nil leaves
	// names as they are, which corosync.toml then rejects.
	Resolve func(host string) (string, error)
}

// Result is a converted file.
type Result struct {
	TOML     string   // the corosync.toml text
	Warnings []string // "FILE:LINE: key: what happened", one per option not carried over
}

// totemInts are totem options with the same name, meaning and unit in both
// files.
var totemInts = []string{
	"token", "token_coefficient", "token_retransmits_before_loss_const", "token_retransmit",
	"hold", "join", "send_join", "consensus", "merge", "downcheck", "fail_recv_const",
	"seqno_unchanged_const", "miss_count_const", "window_size", "max_messages", "netmtu",
}

// converter accumulates the output and the warnings.
type converter struct {
	opt  Options
	warn []string
	errs []string
}

func (c *converter) warnf(line int, key, format string, args ...any) {
	c.warn = append(c.warn, fmt.Sprintf("%s:%d: %s: %s", c.opt.Name, line, key, fmt.Sprintf(format, args...)))
}

func (c *converter) errf(line int, key, format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf("%s:%d: %s: %s", c.opt.Name, line, key, fmt.Sprintf(format, args...)))
}

// Convert turns a parsed corosync.conf into corosync.toml. The result is
// checked by parsing and validating it as ringd would; an error lists every
// problem with the line of the corosync.conf it comes from.
func Convert(root *Section, opt Options) (*Result, error) {
	if opt.Name == "" {
		opt.Name = "corosync.conf"
	}
	c := &converter{opt: opt}
	var b strings.Builder
	b.WriteString("# corosync.toml converted from " + opt.Name + " by `ringctl config import-corosync`.\n")
	b.WriteString("# Options not listed here take ringmaster's defaults (corosync's, except where\n")
	b.WriteString("# examples/corosync.toml says otherwise).\n\n")
	c.totem(root, &b)
	c.nodes(root, &b)
	c.quorum(root, &b)
	c.logging(root, &b)
	c.ipc(root, &b)
	c.system(root, &b)
	known := map[string]bool{"totem": true, "nodelist": true, "quorum": true, "logging": true, "system": true, "uidgid": true, "resources": true}
	for _, s := range root.Sections {
		if !known[s.Name] {
			c.warnf(s.Line, s.Name, "section not carried over (ringmaster has no equivalent)")
		}
	}
	for _, kv := range root.Keys {
		c.warnf(kv.Line, kv.Key, "top-level option not carried over")
	}
	sort.SliceStable(c.warn, func(i, j int) bool { return warnLine(c.warn[i]) < warnLine(c.warn[j]) })
	if len(c.errs) == 0 {
		cfg, err := config.Parse("corosync.toml (converted)", []byte(b.String()))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			c.errs = append(c.errs, fmt.Sprintf("the converted file is not valid: %v", err))
		}
	}
	if len(c.errs) > 0 {
		return &Result{TOML: b.String(), Warnings: c.warn}, fmt.Errorf("%w:\n  %s", ErrConvert, strings.Join(c.errs, "\n  "))
	}
	return &Result{TOML: b.String(), Warnings: c.warn}, nil
}

// warnLine is the line number in a "FILE:LINE: ..." warning.
func warnLine(w string) int {
	_, rest, _ := strings.Cut(w, ":")
	n, _ := strconv.Atoi(rest[:max(0, strings.Index(rest, ":"))])
	return n
}

// one returns the single section called name (a warning for extra ones).
func (c *converter) one(root *Section, name string) *Section {
	all := root.All(name)
	for _, extra := range all[min(1, len(all)):] {
		c.warnf(extra.Line, name, "a second %s section is ignored", name)
	}
	if len(all) == 0 {
		return &Section{Name: name}
	}
	return all[0]
}

func (c *converter) intValue(kv KeyValue) (int, bool) {
	v, err := strconv.Atoi(kv.Value)
	if err != nil || v < 0 {
		c.errf(kv.Line, kv.Key, "%q is not a non-negative integer", kv.Value)
		return 0, false
	}
	return v, true
}

func (c *converter) boolValue(kv KeyValue) (bool, bool) {
	switch strings.ToLower(kv.Value) {
	case "1", "yes", "on", "true":
		return true, true
	case "0", "no", "off", "false":
		return false, true
	}
	c.errf(kv.Line, kv.Key, "%q is not a boolean (yes/no, on/off, 1/0)", kv.Value)
	return false, false
}

func (c *converter) totem(root *Section, b *strings.Builder) {
	t := c.one(root, "totem")
	b.WriteString("[totem]\n")
	handled := map[string]bool{}
	use := func(k string) (KeyValue, bool) {
		handled[k] = true
		return t.Get(k)
	}
	if kv, ok := use("version"); ok && kv.Value != "2" {
		c.warnf(kv.Line, "totem.version", "totem version %s; ringmaster speaks its own Totem (the file is read as version 2)", kv.Value)
	}
	name := "ringmaster"
	if kv, ok := use("cluster_name"); ok && kv.Value != "" {
		name = kv.Value
	} else {
		c.warnf(t.Line, "totem.cluster_name", "not set; using %q", name)
	}
	fmt.Fprintf(b, "cluster_name = %s\n", quote(name))
	transport := "udpu"
	if kv, ok := use("transport"); ok {
		switch kv.Value {
		case "udp", "udpu":
			transport = kv.Value
		case "knet":
			c.warnf(kv.Line, "totem.transport", "knet is not available; using udpu (one unicast datagram per member), and knet's link options are dropped")
		default:
			c.errf(kv.Line, "totem.transport", "unknown transport %q", kv.Value)
		}
	} else {
		// corosync 3 defaults to knet.
		c.warnf(t.Line, "totem.transport", "not set (corosync 3 uses knet); using udpu")
	}
	fmt.Fprintf(b, "transport = %s\n", quote(transport))
	for _, k := range totemInts {
		if kv, ok := use(k); ok {
			if v, ok := c.intValue(kv); ok {
				fmt.Fprintf(b, "%s = %d\n", k, v)
			}
		}
	}
	c.crypto(t, use, b)
	for _, iface := range t.All("interface") {
		c.iface(iface, transport, b)
	}
	for _, kv := range t.Keys {
		if !handled[kv.Key] {
			c.warnf(kv.Line, "totem."+kv.Key, "not carried over (%s)", why(kv.Key))
		}
	}
	for _, s := range t.Sections {
		if s.Name != "interface" {
			c.warnf(s.Line, "totem."+s.Name, "section not carried over")
		}
	}
	b.WriteString("\n")
}

// why explains, for the common options, why one has no equivalent.
func why(key string) string {
	switch {
	case strings.HasPrefix(key, "knet_"), key == "link_mode":
		return "a knet link option; ringmaster has one link per node"
	case key == "rrp_mode":
		return "redundant rings are not available; ringmaster has one link per node"
	case key == "ip_version":
		return "the address family follows ring0_addr"
	case key == "clear_node_high_bit":
		return "node IDs are always given explicitly"
	}
	return "no equivalent in corosync.toml"
}

// crypto maps crypto_cipher/crypto_hash onto one AEAD: ringmaster always
// authenticates and encrypts together, or does neither.
func (c *converter) crypto(t *Section, use func(string) (KeyValue, bool), b *strings.Builder) {
	cipher, hasCipher := use("crypto_cipher")
	hash, hasHash := use("crypto_hash")
	use("keyfile")
	on := func(kv KeyValue, ok bool) bool { return ok && kv.Value != "" && kv.Value != "none" }
	out := "none"
	switch {
	case on(cipher, hasCipher):
		out = "aes256"
		if cipher.Value != "aes256" {
			c.warnf(cipher.Line, "totem.crypto_cipher", "%s becomes aes256 (AES-256-GCM); the other AEAD is chacha20", cipher.Value)
		}
		if on(hash, hasHash) {
			c.warnf(hash.Line, "totem.crypto_hash", "%s is not needed: the AEAD authenticates every datagram", hash.Value)
		}
	case on(hash, hasHash):
		out = "aes256"
		c.warnf(hash.Line, "totem.crypto_hash", "authentication without encryption does not exist in ringmaster; using aes256 (authenticated encryption)")
	}
	if kv, ok := use("secauth"); ok {
		// corosync 2: secauth on encrypts and authenticates (aes256 + sha1)
		// unless crypto_cipher/crypto_hash say otherwise.
		if v, _ := c.boolValue(kv); v && !hasCipher && !hasHash {
			out = "aes256"
			c.warnf(kv.Line, "totem.secauth", "on: using aes256 (AES-256-GCM) with the same keyfile")
		} else {
			c.warnf(kv.Line, "totem.secauth", "corosync 2's switch; crypto_cipher decides")
		}
	}
	fmt.Fprintf(b, "crypto_cipher = %s\n", quote(out))
	if out != "none" {
		key := "/etc/corosync/authkey"
		if kv, ok := t.Get("keyfile"); ok {
			key = kv.Value
		}
		fmt.Fprintf(b, "keyfile = %s\n", quote(key))
	}
}

// iface carries over a totem.interface section of link 0 (multicast group,
// port, TTL); other links are redundant rings, which ringmaster lacks.
func (c *converter) iface(s *Section, transport string, b *strings.Builder) {
	link := "0"
	for _, k := range []string{"linknumber", "ringnumber"} {
		if kv, ok := s.Get(k); ok {
			link = kv.Value
		}
	}
	if link != "0" {
		c.warnf(s.Line, "totem.interface", "link %s is a redundant link; ringmaster has one link per node, so it is dropped", link)
		return
	}
	for _, kv := range s.Keys {
		switch kv.Key {
		case "linknumber", "ringnumber":
		case "mcastaddr":
			if transport == "udp" {
				fmt.Fprintf(b, "mcast_addr = %s\n", quote(kv.Value))
			} else {
				c.warnf(kv.Line, "totem.interface.mcastaddr", "only used by transport udp")
			}
		case "mcastport":
			if v, ok := c.intValue(kv); ok {
				fmt.Fprintf(b, "port = %d\n", v)
			}
		case "ttl":
			if v, ok := c.intValue(kv); ok {
				fmt.Fprintf(b, "ttl = %d\n", v)
			}
		case "bindnetaddr":
			c.warnf(kv.Line, "totem.interface.bindnetaddr", "not needed: ringd binds to its own ring0_addr from the node list")
		default:
			c.warnf(kv.Line, "totem.interface."+kv.Key, "not carried over (%s)", why(kv.Key))
		}
	}
}

func (c *converter) nodes(root *Section, b *strings.Builder) {
	list := c.one(root, "nodelist")
	nodes := list.All("node")
	if len(nodes) == 0 {
		c.errf(list.Line, "nodelist", "no node sections: corosync.toml needs the node list (ringmaster has no multicast autodiscovery)")
		return
	}
	used := map[int]bool{}
	for _, n := range nodes {
		if kv, ok := n.Get("nodeid"); ok {
			if v, err := strconv.Atoi(kv.Value); err == nil {
				used[v] = true
			}
		}
	}
	next := 1
	for _, n := range nodes {
		b.WriteString("[[node]]\n")
		id := 0
		if kv, ok := n.Get("nodeid"); ok {
			if v, ok := c.intValue(kv); ok {
				id = v
			}
		} else {
			for used[next] {
				next++
			}
			id = next
			used[id] = true
			c.warnf(n.Line, "nodelist.node", "no nodeid (corosync derives one from the address); using %d", id)
		}
		fmt.Fprintf(b, "nodeid = %d\n", id)
		if kv, ok := n.Get("name"); ok {
			fmt.Fprintf(b, "name = %s\n", quote(kv.Value))
		}
		if kv, ok := n.Get("ring0_addr"); ok {
			fmt.Fprintf(b, "ring0_addr = %s\n", quote(c.address(kv)))
		} else {
			c.errf(n.Line, "nodelist.node.ring0_addr", "missing")
		}
		if kv, ok := n.Get("quorum_votes"); ok {
			if v, ok := c.intValue(kv); ok {
				fmt.Fprintf(b, "quorum_votes = %d\n", v)
			}
		}
		for _, kv := range n.Keys {
			switch {
			case kv.Key == "nodeid", kv.Key == "name", kv.Key == "ring0_addr", kv.Key == "quorum_votes":
			case strings.HasPrefix(kv.Key, "ring") && strings.HasSuffix(kv.Key, "_addr"):
				c.warnf(kv.Line, "nodelist.node."+kv.Key, "a redundant link; ringmaster has one link per node, so it is dropped")
			default:
				c.warnf(kv.Line, "nodelist.node."+kv.Key, "not carried over")
			}
		}
		b.WriteString("\n")
	}
}

// address returns ring0_addr as an IP address, resolving a host name when
// the options allow.
func (c *converter) address(kv KeyValue) string {
	if _, err := netip.ParseAddr(kv.Value); err == nil {
		return kv.Value
	}
	if c.opt.Resolve == nil {
		c.errf(kv.Line, "nodelist.node.ring0_addr", "%q is a host name; corosync.toml needs an IP address", kv.Value)
		return kv.Value
	}
	ip, err := c.opt.Resolve(kv.Value)
	if err != nil {
		c.errf(kv.Line, "nodelist.node.ring0_addr", "%q does not resolve: %v", kv.Value, err)
		return kv.Value
	}
	c.warnf(kv.Line, "nodelist.node.ring0_addr", "host name %q resolved to %s now; corosync.toml keeps the address", kv.Value, ip)
	return ip
}

func (c *converter) quorum(root *Section, b *strings.Builder) {
	q := c.one(root, "quorum")
	b.WriteString("[quorum]\nprovider = \"votequorum\"\n")
	for _, kv := range q.Keys {
		switch kv.Key {
		case "provider":
			if kv.Value != "corosync_votequorum" {
				c.errf(kv.Line, "quorum.provider", "%q: only corosync_votequorum has an equivalent", kv.Value)
			}
		case "expected_votes", "last_man_standing_window":
			if v, ok := c.intValue(kv); ok {
				fmt.Fprintf(b, "%s = %d\n", kv.Key, v)
			}
		case "two_node", "wait_for_all", "last_man_standing", "allow_downscale":
			if v, ok := c.boolValue(kv); ok {
				fmt.Fprintf(b, "%s = %t\n", kv.Key, v)
			}
		case "auto_tie_breaker":
			if v, ok := c.boolValue(kv); ok {
				fmt.Fprintf(b, "auto_tie_breaker = %t\n", v)
			}
		case "auto_tie_breaker_node":
			fmt.Fprintf(b, "auto_tie_breaker_node = %s\n", quote(kv.Value))
		default:
			c.warnf(kv.Line, "quorum."+kv.Key, "not carried over")
		}
	}
	for _, s := range q.Sections {
		if s.Name == "device" {
			c.warnf(s.Line, "quorum.device", "quorum devices (qdevice/qnetd) are not available")
		} else {
			c.warnf(s.Line, "quorum."+s.Name, "section not carried over")
		}
	}
	b.WriteString("\n")
}

func (c *converter) logging(root *Section, b *strings.Builder) {
	l := c.one(root, "logging")
	b.WriteString("[logging]\n")
	toFile, hasToFile := l.Get("to_logfile")
	for _, kv := range l.Keys {
		switch kv.Key {
		case "to_stderr":
			if v, ok := c.boolValue(kv); ok {
				fmt.Fprintf(b, "to_stderr = %t\n", v)
			}
		case "to_logfile":
			c.boolValue(kv)
		case "logfile":
			if on, _ := c.boolValue(toFile); hasToFile && on {
				fmt.Fprintf(b, "logfile = %s\n", quote(kv.Value))
			} else {
				c.warnf(kv.Line, "logging.logfile", "to_logfile is not on, so no log file is written")
			}
		case "debug":
			switch kv.Value {
			case "on", "trace":
				b.WriteString("debug = true\n")
			case "off":
				b.WriteString("debug = false\n")
			default:
				c.errf(kv.Line, "logging.debug", "%q: want on, off or trace", kv.Value)
			}
		case "to_syslog":
			if v, _ := c.boolValue(kv); v {
				c.warnf(kv.Line, "logging.to_syslog", "ringd logs to stderr and its log file; under systemd the journal keeps stderr")
			}
		default:
			c.warnf(kv.Line, "logging."+kv.Key, "not carried over")
		}
	}
	for _, s := range l.Sections {
		c.warnf(s.Line, "logging."+s.Name, "per-subsystem logging is not carried over")
	}
	b.WriteString("\n")
}

// ipc carries over inline uidgid sections (who may use the IPC socket).
func (c *converter) ipc(root *Section, b *strings.Builder) {
	var uids, gids []int
	for _, s := range root.All("uidgid") {
		for _, kv := range s.Keys {
			v, err := strconv.Atoi(kv.Value)
			if kv.Key != "uid" && kv.Key != "gid" {
				c.warnf(kv.Line, "uidgid."+kv.Key, "not carried over")
				continue
			}
			if err != nil || v < 0 {
				c.warnf(kv.Line, "uidgid."+kv.Key, "%q is a name; corosync.toml takes numeric ids (look it up with `id`)", kv.Value)
				continue
			}
			if kv.Key == "uid" {
				uids = append(uids, v)
			} else {
				gids = append(gids, v)
			}
		}
	}
	if len(uids)+len(gids) == 0 {
		return
	}
	sort.Ints(uids)
	sort.Ints(gids)
	fmt.Fprintf(b, "[ipc]\nallowed_uids = %s\nallowed_gids = %s\n\n", intList(uids), intList(gids))
}

func (c *converter) system(root *Section, b *strings.Builder) {
	s := c.one(root, "system")
	if kv, ok := s.Get("state_dir"); ok {
		fmt.Fprintf(b, "[system]\nstate_dir = %s\n", quote(kv.Value))
	}
	for _, kv := range s.Keys {
		if kv.Key != "state_dir" {
			c.warnf(kv.Line, "system."+kv.Key, "not carried over (ringd sets its own scheduling and IPC)")
		}
	}
	for _, r := range root.All("resources") {
		c.warnf(r.Line, "resources", "corosync's watchdog resources are not carried over")
	}
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
