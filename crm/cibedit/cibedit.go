// Package cibedit holds the administrative edits of a CIB as pure functions:
// each takes a CIB (and its arguments) and returns a new CIB, or an error
// and no change. The input is never modified. They give the commands of
// `ringctl crm` (and of ringctl installed as crm_attribute, crm_master and
// attrd_updater) Pacemaker's meanings:
//
//	edit                      Pacemaker equivalent             what changes
//	Start / Stop              crm_resource --meta -p target-role   meta target-role
//	Restart                   crm_resource --restart           Stop, then Restore
//	Move RSC NODE             crm_resource --move              cli-prefer-RSC  (INFINITY on NODE)
//	Move RSC (no node)        crm_resource --move              cli-ban-RSC-on-CURRENT
//	Ban RSC NODE              crm_resource --ban               cli-ban-RSC-on-NODE (-INFINITY)
//	Clear RSC [NODE]          crm_resource --clear             removes the two above
//	Cleanup RSC [NODE]        crm_resource --cleanup           fail counts and failed history
//	Refresh RSC [NODE]        crm_resource --refresh           all history (reprobe)
//	Standby NODE on|off       crm_standby / crm node standby   node attribute standby
//	SetAttr/GetAttr/DelAttr   crm_attribute, crm_master        node, status, cluster options, defaults
//	Replace / ReplaceConfig   cibadmin --replace               the configuration section
//
// Versions follow Pacemaker: a change of the configuration increments epoch
// and resets num_updates to 0; a change of the status section only
// increments num_updates; admin_epoch is only ever raised by a replacement
// that carries a higher one. The controller (ringd wiring) applies an edit
// on the DC and replicates the result; nothing here does I/O.
package cibedit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrNoResource means the named resource is not configured.
	ErrNoResource = errors.New("cibedit: no such resource")
	// ErrNoNode means the named node is neither configured nor in the status.
	ErrNoNode = errors.New("cibedit: no such node")
	// ErrNoAttr means a queried attribute is not set.
	ErrNoAttr = errors.New("cibedit: attribute not set")
	// ErrUsage means the arguments are inconsistent (a missing name, an
	// unknown section or lifetime, ...).
	ErrUsage = errors.New("cibedit: invalid arguments")
)

// doc is a CIB being edited as one element tree.
type doc struct {
	root          *cib.Element
	config, state bool // which sections changed, for the version bump
}

func open(c *cib.CIB) (*doc, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no CIB", ErrUsage)
	}
	var b strings.Builder
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	root, err := cib.ParseElement(strings.NewReader(b.String()))
	if err != nil {
		return nil, fmt.Errorf("cibedit: CIB does not re-parse: %w", err)
	}
	return &doc{root: root}, nil
}

// done bumps the versions for what changed and converts the tree back,
// validating the result with cib's parser.
func (d *doc) done() (*cib.CIB, error) {
	switch {
	case d.config:
		d.root.Attrs.Set("epoch", strconv.Itoa(d.version("epoch")+1))
		d.root.Attrs.Set("num_updates", "0")
	case d.state:
		d.root.Attrs.Set("num_updates", strconv.Itoa(d.version("num_updates")+1))
	}
	return cib.FromElement(d.root)
}

func (d *doc) version(name string) int {
	n, _ := strconv.Atoi(d.root.Attrs.Value(name))
	return n
}

func (d *doc) section(name string) *cib.Element {
	cfg := d.root.Child("configuration")
	return child(cfg, name, true)
}

// child returns e's first child named name, creating it when create is set.
func child(e *cib.Element, name string, create bool) *cib.Element {
	if c := e.Child(name); c != nil || !create {
		return c
	}
	c := &cib.Element{Name: name}
	e.Children = append(e.Children, c)
	return c
}

// walk calls fn for e and every descendant, depth first in document order.
func walk(e *cib.Element, fn func(e *cib.Element)) {
	fn(e)
	for _, c := range e.Children {
		walk(c, fn)
	}
}

func (d *doc) idTaken(id string) bool {
	taken := false
	walk(d.root, func(e *cib.Element) {
		if e.ID() == id {
			taken = true
		}
	})
	return taken
}

// newID returns SanitizeID(base), made unique in the document with a
// numeric suffix as Pacemaker's crm_generate_uuid-free tools do.
func (d *doc) newID(base string) string {
	id := SanitizeID(base)
	if !d.idTaken(id) {
		return id
	}
	for i := 1; ; i++ {
		if c := id + "-" + strconv.Itoa(i); !d.idTaken(c) {
			return c
		}
	}
}

// SanitizeID makes s a valid XML ID as crm_xml_sanitize_id does: characters
// other than letters, digits, '_', '-' and '.' become '.', and an id that
// does not start with a letter or '_' gets a leading '_'.
func SanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.') {
			b[i] = '.'
		}
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z' || b[0] == '_') {
		b = append([]byte{'_'}, b...)
	}
	return string(b)
}

// resource finds a configured resource element (primitive, group, clone,
// master, bundle) by id.
func (d *doc) resource(id string) (*cib.Element, error) {
	var found *cib.Element
	walk(d.section("resources"), func(e *cib.Element) {
		switch e.Name {
		case "primitive", "group", "clone", "master", "bundle":
			if found == nil && e.ID() == id {
				found = e
			}
		}
	})
	if found == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoResource, id)
	}
	return found, nil
}

// nodeIdent is a node's id and name, from the configuration or the status.
type nodeIdent struct{ id, uname string }

func (d *doc) node(name string) (nodeIdent, *cib.Element, error) {
	for _, n := range d.section("nodes").Children {
		if n.Name == "node" && (n.Attrs.Value("uname") == name || n.Attrs.Value("uname") == "" && n.ID() == name) {
			un := n.Attrs.Value("uname")
			if un == "" {
				un = n.ID()
			}
			return nodeIdent{n.ID(), un}, n, nil
		}
	}
	if st := d.root.Child("status"); st != nil {
		for _, ns := range st.Children {
			if ns.Name == "node_state" && ns.Attrs.Value("uname") == name {
				return nodeIdent{ns.ID(), name}, nil, nil
			}
		}
	}
	return nodeIdent{}, nil, fmt.Errorf("%w: %q", ErrNoNode, name)
}

// nodeState returns the node's <node_state>, creating one when create is set.
func (d *doc) nodeState(n nodeIdent, create bool) *cib.Element {
	st := child(d.root, "status", create)
	if st == nil {
		return nil
	}
	for _, ns := range st.Children {
		if ns.Name == "node_state" && (ns.Attrs.Value("uname") == n.uname || ns.ID() == n.id) {
			return ns
		}
	}
	if !create {
		return nil
	}
	ns := &cib.Element{Name: "node_state", Attrs: cib.Attrs{{Name: "id", Value: n.id}, {Name: "uname", Value: n.uname}}}
	st.Children = append(st.Children, ns)
	return ns
}

// setPair sets name=value in the first set of kind under parent that holds
// name, else in the set with setID (created if absent).
func (d *doc) setPair(parent *cib.Element, kind, setID, name, value string) {
	for _, s := range parent.Children {
		if s.Name != kind {
			continue
		}
		for _, p := range s.Children {
			if p.Name == "nvpair" && p.Attrs.Value("name") == name {
				p.Attrs.Set("value", value)
				return
			}
		}
	}
	var set *cib.Element
	for _, s := range parent.Children {
		if s.Name == kind && (setID == "" || s.ID() == setID) {
			set = s
			break
		}
	}
	if set == nil {
		if setID == "" {
			setID = parent.ID() + "-" + kind
		}
		set = &cib.Element{Name: kind, Attrs: cib.Attrs{{Name: "id", Value: d.newID(setID)}}}
		parent.Children = append(parent.Children, set)
	}
	set.Children = append(set.Children, &cib.Element{Name: "nvpair", Attrs: cib.Attrs{
		{Name: "id", Value: d.newID(set.ID() + "-" + name)}, {Name: "name", Value: name}, {Name: "value", Value: value}}})
}

// getPair returns the first value of name in the sets of kind under parent.
func getPair(parent *cib.Element, kind, name string) (string, bool) {
	if parent == nil {
		return "", false
	}
	for _, s := range parent.Children {
		if s.Name != kind {
			continue
		}
		for _, p := range s.Children {
			if p.Name == "nvpair" && p.Attrs.Value("name") == name {
				return p.Attrs.Get("value")
			}
		}
	}
	return "", false
}

// delPairs removes every nvpair under parent's sets of kind whose name
// matches; it reports whether anything was removed.
func delPairs(parent *cib.Element, kind string, match func(name string) bool) bool {
	if parent == nil {
		return false
	}
	removed := false
	for _, s := range parent.Children {
		if s.Name != kind {
			continue
		}
		kept := s.Children[:0]
		for _, p := range s.Children {
			if p.Name == "nvpair" && match(p.Attrs.Value("name")) {
				removed = true
				continue
			}
			kept = append(kept, p)
		}
		s.Children = kept
	}
	return removed
}

func removeChildren(e *cib.Element, drop func(c *cib.Element) bool) bool {
	if e == nil {
		return false
	}
	removed := false
	kept := e.Children[:0]
	for _, c := range e.Children {
		if drop(c) {
			removed = true
			continue
		}
		kept = append(kept, c)
	}
	e.Children = kept
	return removed
}
