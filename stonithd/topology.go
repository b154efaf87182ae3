package stonithd

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// MaxLevelIndex is the highest fencing-level index Pacemaker accepts (1-9).
const MaxLevelIndex = 9

// Level is one <fencing-level>: for the nodes it matches, the devices
// that are tried together (in order; all must succeed) at that index.
type Level struct {
	ID    string
	Index int
	// Exactly one of Target, TargetPattern and TargetAttribute is set.
	Target          string
	TargetPattern   string
	TargetAttribute string
	TargetValue     string
	Devices         []string

	re *regexp.Regexp
}

// Matches reports whether the level applies to node, whose node
// attributes are attrs (only used by target-attribute levels).
func (l *Level) Matches(node string, attrs map[string]string) bool {
	switch {
	case l.Target != "":
		return strings.EqualFold(l.Target, node)
	case l.re != nil:
		return l.re.MatchString(node)
	case l.TargetAttribute != "":
		v, ok := attrs[l.TargetAttribute]
		return ok && v == l.TargetValue
	}
	return false
}

// TargetString renders the level's target as stonith_admin does:
// "node", "regexp", or "attr=value".
func (l *Level) TargetString() string {
	switch {
	case l.Target != "":
		return l.Target
	case l.TargetPattern != "":
		return "~" + l.TargetPattern
	}
	return l.TargetAttribute + "=" + l.TargetValue
}

// Topology is the cluster's fencing-topology: every level in document
// order.
type Topology struct {
	Levels []*Level
}

// For returns the levels that apply to target, by ascending index. When
// two levels of the same index match (a node name level and a pattern
// level), the one listed first in the CIB wins, so every node computes the
// same plan. Returns nil when the target has no topology: the fencer then
// uses every capable device, by priority.
func (t *Topology) For(target string, attrs map[string]string) []*Level {
	if t == nil {
		return nil
	}
	byIndex := map[int]*Level{}
	for _, l := range t.Levels {
		if !l.Matches(target, attrs) {
			continue
		}
		if _, ok := byIndex[l.Index]; !ok {
			byIndex[l.Index] = l
		}
	}
	out := make([]*Level, 0, len(byIndex))
	for _, l := range byIndex {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// TopologyFromElement reads the <fencing-topology> of a CIB: root may be
// the <cib> element, its <configuration>, or the <fencing-topology>
// itself. A CIB without one has an empty topology. (crm/cib keeps the
// configuration verbatim but does not type this section, since it does
// not affect scheduling.)
func TopologyFromElement(root *cib.Element) (*Topology, error) {
	ft := root
	if ft != nil && ft.Name == "cib" {
		ft = ft.Child("configuration")
	}
	if ft != nil && ft.Name == "configuration" {
		ft = ft.Child("fencing-topology")
	}
	t := &Topology{}
	if ft == nil {
		return t, nil
	}
	if ft.Name != "fencing-topology" {
		return nil, fmt.Errorf("%w: <%s> is not <fencing-topology>", ErrBadTopology, ft.Name)
	}
	seen := map[string]bool{}
	for _, e := range ft.Children {
		if e.Name != "fencing-level" {
			return nil, fmt.Errorf("%w: unexpected <%s> in <fencing-topology>", ErrBadTopology, e.Name)
		}
		l, err := parseLevel(e)
		if err != nil {
			return nil, err
		}
		key := l.TargetString() + "#" + strconv.Itoa(l.Index)
		if seen[key] {
			return nil, fmt.Errorf("%w: level %q: a second level %d for %s", ErrBadTopology, l.ID, l.Index, l.TargetString())
		}
		seen[key] = true
		t.Levels = append(t.Levels, l)
	}
	return t, nil
}

// ParseTopology reads a CIB (or a bare <fencing-topology>) from r.
func ParseTopology(r io.Reader) (*Topology, error) {
	root, err := cib.ParseElement(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTopology, err)
	}
	return TopologyFromElement(root)
}

func parseLevel(e *cib.Element) (*Level, error) {
	l := &Level{ID: e.ID()}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: level %q: %s", ErrBadTopology, l.ID, fmt.Sprintf(format, args...))
	}
	idx, err := strconv.Atoi(strings.TrimSpace(e.Attrs.Value("index")))
	if err != nil || idx < 1 || idx > MaxLevelIndex {
		return nil, bad("index %q is not 1-%d", e.Attrs.Value("index"), MaxLevelIndex)
	}
	l.Index = idx
	l.Target = e.Attrs.Value("target")
	l.TargetPattern = e.Attrs.Value("target-pattern")
	l.TargetAttribute = e.Attrs.Value("target-attribute")
	l.TargetValue = e.Attrs.Value("target-value")
	n := 0
	for _, s := range []string{l.Target, l.TargetPattern, l.TargetAttribute} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, bad("needs exactly one of target, target-pattern, target-attribute")
	}
	if l.TargetPattern != "" {
		if l.re, err = regexp.Compile(l.TargetPattern); err != nil {
			return nil, bad("target-pattern: %v", err)
		}
	}
	for _, d := range strings.Split(e.Attrs.Value("devices"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			l.Devices = append(l.Devices, d)
		}
	}
	if len(l.Devices) == 0 {
		return nil, bad("no devices")
	}
	return l, nil
}

// Validate checks that every level names configured devices.
func (t *Topology) Validate(devices []*Device) error {
	known := map[string]bool{}
	for _, d := range devices {
		known[d.ID] = true
	}
	for _, l := range t.Levels {
		for _, d := range l.Devices {
			if !known[d] {
				return fmt.Errorf("%w: level %q (%s, index %d) names unknown device %q", ErrBadTopology, l.ID, l.TargetString(), l.Index, d)
			}
		}
	}
	return nil
}
