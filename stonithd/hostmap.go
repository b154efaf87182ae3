package stonithd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxHostEntries bounds what a host list, host map or list output may
// hold: a fence device with more ports than this is not a device we will
// ever meet, and the bound keeps a garbled agent output from growing the
// daemon.
const maxHostEntries = 4096

// HostMap maps node names to the port (plug) the device knows them by.
// Lookups are case-insensitive, like Pacemaker's node-name comparisons.
type HostMap struct {
	names []string          // in input order, as written
	ports map[string]string // lower-cased name -> port
}

// ParseHostMap parses pcmk_host_map: entries "node:port" separated by ';'
// or white space, with '=' accepted for ':' ("node1:1;node2:2,3" maps node2
// to the port string "2,3", which fence agents split on their
// plug_separator). A backslash takes the next character literally, so a
// port may contain ':' or ';'. A later entry for the same node replaces an
// earlier one. An entry without a separator or with an empty name or port
// is an error, so a typo never silently leaves a node unfenceable.
func ParseHostMap(s string) (HostMap, error) {
	m := HostMap{ports: map[string]string{}}
	var name, cur strings.Builder
	inValue := false
	flush := func() error {
		if !inValue {
			if cur.Len() == 0 {
				return nil
			}
			return fmt.Errorf("%w: pcmk_host_map entry %q has no ':' before the port", ErrBadDevice, cur.String())
		}
		n, p := name.String(), cur.String()
		if n == "" || p == "" {
			return fmt.Errorf("%w: pcmk_host_map entry %q:%q needs a node and a port", ErrBadDevice, n, p)
		}
		key := strings.ToLower(n)
		if _, dup := m.ports[key]; !dup {
			if len(m.names) >= maxHostEntries {
				return fmt.Errorf("%w: pcmk_host_map has more than %d entries", ErrBadDevice, maxHostEntries)
			}
			m.names = append(m.names, n)
		}
		m.ports[key] = p
		name.Reset()
		cur.Reset()
		inValue = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if err := flush(); err != nil {
				return HostMap{}, err
			}
		case (c == ':' || c == '=') && !inValue:
			name.WriteString(cur.String())
			cur.Reset()
			inValue = true
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return HostMap{}, err
	}
	return m, nil
}

// Port returns the port mapped to node.
func (m HostMap) Port(node string) (string, bool) {
	p, ok := m.ports[strings.ToLower(node)]
	return p, ok
}

// Nodes returns the mapped node names in input order.
func (m HostMap) Nodes() []string { return append([]string(nil), m.names...) }

// Len is the number of mapped nodes.
func (m HostMap) Len() int { return len(m.names) }

// String renders the map in pcmk_host_map syntax (escaping separators).
func (m HostMap) String() string {
	var b strings.Builder
	for i, n := range m.names {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(escapeMap(n))
		b.WriteByte(':')
		b.WriteString(escapeMap(m.ports[strings.ToLower(n)]))
	}
	return b.String()
}

func escapeMap(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', ';', ':', '=', ' ', '\t', '\n', '\r':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseHostList splits pcmk_host_list: names separated by white space,
// ',' or ';'. Empty fields are dropped; duplicates (case-insensitive) are
// kept once.
func ParseHostList(s string) []string {
	return splitWords(s, maxHostEntries)
}

// ParseListOutput extracts the node names from a fence agent's "list"
// output, the dynamic-list host check. Agents print one outlet per line,
// usually "port,alias" (fence_virsh: "name,uuid"; fence_xvm: "name uuid
// state"); every word of a line is a name the device answers to. Lines
// that are an agent's complaint about its parameters ("invalid",
// "variable", "Failed: ...", "Parse error: ...") are skipped rather than
// read as host names.
func ParseListOutput(out string) []string {
	var words []string
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if complaint(l) {
			continue
		}
		words = append(words, splitWords(line, maxHostEntries-len(words))...)
		if len(words) >= maxHostEntries {
			break
		}
	}
	return dedupFold(words)
}

func splitWords(s string, max int) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	out := dedupFold(f)
	if max >= 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

func dedupFold(in []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for _, w := range in {
		k := strings.ToLower(w)
		if w == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, w)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ParseTimeout parses a Pacemaker time specification as used by
// pcmk_*_timeout and stonith-timeout: a number with an optional unit
// (ms, msec, us, usec, s, sec, m, min, h, hr; no unit means seconds), or
// an ISO 8601 "PT..." duration handled by time.ParseDuration after
// conversion.
func ParseTimeout(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("%w: empty time", ErrBadDevice)
	}
	if strings.HasPrefix(t, "pt") {
		d, err := time.ParseDuration(t[2:])
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%w: bad time %q", ErrBadDevice, s)
		}
		return d, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v > 1e7 {
		return 0, fmt.Errorf("%w: bad time %q", ErrBadDevice, s)
	}
	var mult time.Duration
	switch unit {
	case "", "s", "sec":
		mult = time.Second
	case "ms", "msec":
		mult = time.Millisecond
	case "us", "usec":
		mult = time.Microsecond
	case "m", "min":
		mult = time.Minute
	case "h", "hr":
		mult = time.Hour
	default:
		return 0, fmt.Errorf("%w: bad time unit in %q", ErrBadDevice, s)
	}
	return time.Duration(v * float64(mult)), nil
}

// complaint reports whether a (lower-cased) line of list output is an
// agent's error message rather than outlets.
func complaint(l string) bool {
	for _, w := range []string{"invalid", "variable", "error:", "warning:", "failed:"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}
