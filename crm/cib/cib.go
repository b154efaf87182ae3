// Package cib parses Pacemaker's cluster information base (CIB) XML into
// typed Go values and writes it back out.
//
// Only the subset of the schema that the ringmaster policy engine implements
// is accepted: primitives, groups and clones (<clone>, <master>),
// location/colocation/order constraints
// with node-attribute rules, attribute sets (with id-refs and rules),
// rsc_defaults/op_defaults, and the status section (node_state, transient
// attributes, operation history). Anything else that would change a
// scheduling decision (bundles, tickets, resource sets, templates,
// remote nodes, date rules, ...) is rejected with an error wrapping
// ErrUnsupported that names the element and its id, so that an unsupported
// configuration never yields a silently wrong answer.
//
// The configuration section is kept verbatim (as an Element tree) alongside
// the typed view so that WriteTo reproduces it exactly; the status section is
// typed and mutable because the simulator records fake operation results in
// it.
package cib

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrSyntax means the input is not well-formed XML.
	ErrSyntax = errors.New("cib: malformed XML")
	// ErrInvalid means the XML is well-formed but not a valid CIB.
	ErrInvalid = errors.New("cib: invalid configuration")
	// ErrUnsupported means the CIB uses a construct ringmaster does not
	// implement; the wrapped message names the element and its id.
	ErrUnsupported = errors.New("cib: unsupported construct")
)

// CIB is a parsed cluster information base.
type CIB struct {
	// Attrs are the attributes of the <cib> root (have-quorum, dc-uuid,
	// crm_feature_set, execution-date, ...).
	Attrs  Attrs
	Config *Configuration
	Status *Status

	configXML *Element // verbatim <configuration>, written back by WriteTo
}

// Configuration is the typed <configuration> section.
type Configuration struct {
	CrmConfig   []*NVSet
	Nodes       []*Node
	Resources   []*Resource
	Locations   []*Location
	Colocations []*Colocation
	Orders      []*Order
	// Constraints lists every constraint in document order; the scheduler
	// unpacks them in this order, which affects tie-breaks.
	Constraints []Constraint
	RscDefaults []*NVSet
	OpDefaults  []*NVSet
	// Tags lists the ids of <tag> elements; constraints may not use them.
	Tags []string
}

// NVSet is an attribute set (instance_attributes, meta_attributes,
// cluster_property_set, utilization) with its optional rule and score.
type NVSet struct {
	Kind  string
	ID    string
	Score string
	Rule  *Rule
	Pairs []NVPair
}

// NVPair is one name/value pair. HasValue distinguishes value="" from an
// absent value (an nvpair without a value is ignored by Pacemaker).
type NVPair struct {
	ID       string
	Name     string
	Value    string
	HasValue bool
}

// Rule is a <rule> with node-attribute expressions and nested rules.
type Rule struct {
	ID             string
	Score          string
	ScoreAttribute string
	BooleanOp      string
	Role           string
	Expressions    []*Expression
	Rules          []*Rule
}

// Expression is a node-attribute <expression>.
type Expression struct {
	ID          string
	Attribute   string
	Operation   string
	Value       string
	HasValue    bool
	Type        string
	ValueSource string
}

// Node is a configured cluster node.
type Node struct {
	ID    string
	Uname string
	Type  string
	Score string
	Attrs []*NVSet
}

// Resource is a primitive, a group or a clone. Groups and clones have
// Children and no agent.
type Resource struct {
	Kind        string // "primitive" or "group"
	ID          string
	Class       string
	Provider    string
	Type        string
	Description string
	Meta        []*NVSet
	Instance    []*NVSet
	Ops         []*Op
	Children    []*Resource
}

// IsGroup reports whether r is a group.
func (r *Resource) IsGroup() bool { return r.Kind == "group" }

// IsFenceDevice reports whether r is a fence device: class stonith (a
// fence-agents executable), or one of ringmaster's built-in fence agents
// (class builtin, type fence-*), which the scheduler treats as Pacemaker
// treats class stonith.
func (r *Resource) IsFenceDevice() bool {
	return r.Kind != "group" && !r.IsClone() && (r.Class == "stonith" || r.Class == "builtin" && strings.HasPrefix(r.Type, "fence-"))
}

// IsClone reports whether r is a clone (<clone>, or <master>: a promotable
// clone in the older syntax). Its only child is the primitive or group that
// is cloned.
func (r *Resource) IsClone() bool { return r.Kind == "clone" || r.Kind == "master" }

// Agent returns class[:provider]:type as crm_mon prints it.
func (r *Resource) Agent() string {
	if r.Provider != "" {
		return r.Class + ":" + r.Provider + ":" + r.Type
	}
	return r.Class + ":" + r.Type
}

// Op is a configured <op>. Attrs holds every XML attribute of the element.
type Op struct {
	ID       string
	Name     string
	Interval string
	Role     string
	Attrs    Attrs
	Meta     []*NVSet
	Instance []*NVSet
}

// Enabled reports whether the op is enabled (the default).
func (o *Op) Enabled() bool {
	v, ok := o.Attrs.Get("enabled")
	if !ok {
		return true
	}
	b, ok := ParseBool(v)
	return !ok || b
}

// Constraint is one of *Location, *Colocation or *Order.
type Constraint interface{ constraintID() string }

func (l *Location) constraintID() string   { return l.ID }
func (c *Colocation) constraintID() string { return c.ID }
func (o *Order) constraintID() string      { return o.ID }

// Location is an rsc_location constraint.
type Location struct {
	ID        string
	Rsc       string
	Node      string
	Score     string
	Role      string
	Discovery string
	Rules     []*Rule
}

// Colocation is an rsc_colocation constraint.
type Colocation struct {
	ID            string
	Rsc           string
	WithRsc       string
	Score         string
	RscRole       string
	WithRscRole   string
	NodeAttribute string
	Influence     string
}

// Order is an rsc_order constraint.
type Order struct {
	ID          string
	First       string
	Then        string
	FirstAction string
	ThenAction  string
	Kind        string
	Score       string
	Symmetrical string
	// RequireAll is require-all: "false" lets a clone's first action
	// satisfy the order once one instance's has run (like clone-min=1).
	RequireAll string
}

// Parse reads and validates a CIB.
func Parse(r io.Reader) (*CIB, error) {
	root, err := ParseElement(r)
	if err != nil {
		return nil, err
	}
	return FromElement(root)
}

// FromElement converts an element tree into a CIB.
func FromElement(root *Element) (*CIB, error) {
	if root.Name != "cib" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <cib>", ErrInvalid, root.Name)
	}
	c := &CIB{Attrs: root.Attrs.Clone()}
	cfg := root.Child("configuration")
	if cfg == nil {
		return nil, fmt.Errorf("%w: no <configuration> section", ErrInvalid)
	}
	c.configXML = cfg.Clone()
	idx := map[string]*Element{}
	indexIDs(root, idx, 0)
	p := &converter{ids: idx}
	conf, err := p.configuration(cfg)
	if err != nil {
		return nil, err
	}
	c.Config = conf
	st := root.Child("status")
	c.Status = &Status{}
	if st != nil {
		if c.Status, err = p.status(st); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func indexIDs(e *Element, idx map[string]*Element, depth int) {
	if depth > maxDepth {
		return
	}
	if id, ok := e.Attrs.Get("id"); ok {
		if _, dup := idx[id]; !dup {
			idx[id] = e
		}
	}
	for _, c := range e.Children {
		indexIDs(c, idx, depth+1)
	}
}

// ParseBool interprets Pacemaker's boolean spellings (crm_is_true and
// crm_str_to_boolean): true/on/yes/y/1 and false/off/no/n/0, any case.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "y", "1":
		return true, true
	case "false", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

// IsTrue is crm_is_true: only the true spellings count.
func IsTrue(s string) bool {
	v, ok := ParseBool(s)
	return ok && v
}

// WriteTo writes the CIB as XML: the root attributes, the configuration
// exactly as read, and the (possibly modified) status section.
func (c *CIB) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString("<cib")
	for _, a := range c.Attrs {
		fmt.Fprintf(&b, ` %s="%s"`, a.Name, EscapeAttr(a.Value))
	}
	b.WriteString(">\n")
	if c.configXML != nil {
		if err := c.configXML.Write(&b, 1); err != nil {
			return 0, err
		}
	}
	c.Status.element().write(&b, 1)
	b.WriteString("</cib>\n")
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Clone returns a deep copy; the simulator mutates the copy's status.
func (c *CIB) Clone() *CIB {
	var b strings.Builder
	if _, err := c.WriteTo(&b); err != nil {
		panic(fmt.Sprintf("cib: clone of a parsed CIB failed to serialise: %v", err))
	}
	out, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		panic(fmt.Sprintf("cib: clone of a parsed CIB failed to re-parse: %v", err))
	}
	return out
}
