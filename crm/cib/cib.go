// Package cib parses Pacemaker's cluster information base (CIB) XML into
// typed Go values and writes it back out.
//
// Only the subset of the schema that the ringmaster policy engine implements
// is accepted: primitives and groups, location/colocation/order constraints
// with node-attribute rules, attribute sets (with id-refs and rules),
// rsc_defaults/op_defaults, and the status section (node_state, transient
// attributes, operation history). Anything else that would change a
// scheduling decision (clones, bundles, tickets, resource sets, templates,
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

// Resource is a primitive or a group. Groups have Children and no agent.
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

type converter struct {
	ids map[string]*Element
}

func unsupported(e *Element) error {
	return fmt.Errorf("%w: <%s id=%q>", ErrUnsupported, e.Name, e.ID())
}

func invalid(e *Element, format string, args ...any) error {
	return fmt.Errorf("%w: <%s id=%q>: %s", ErrInvalid, e.Name, e.ID(), fmt.Sprintf(format, args...))
}

// deref follows an id-ref to the referenced element of the same kind.
func (p *converter) deref(e *Element) (*Element, error) {
	ref, ok := e.Attrs.Get("id-ref")
	if !ok {
		return e, nil
	}
	t, ok := p.ids[ref]
	if !ok {
		return nil, invalid(e, "id-ref %q does not exist", ref)
	}
	if t.Name != e.Name {
		return nil, invalid(e, "id-ref %q refers to a <%s>", ref, t.Name)
	}
	return t, nil
}

func (p *converter) configuration(cfg *Element) (*Configuration, error) {
	conf := &Configuration{}
	for _, sec := range cfg.Children {
		var err error
		switch sec.Name {
		case "crm_config":
			conf.CrmConfig, err = p.nvsets(sec, "cluster_property_set")
		case "nodes":
			err = p.nodes(sec, conf)
		case "resources":
			err = p.resources(sec, conf)
		case "constraints":
			err = p.constraints(sec, conf)
		case "rsc_defaults":
			conf.RscDefaults, err = p.nvsets(sec, "meta_attributes")
		case "op_defaults":
			conf.OpDefaults, err = p.nvsets(sec, "meta_attributes")
		case "tags":
			for _, t := range sec.Children {
				if t.Name == "tag" && t.ID() != "" {
					conf.Tags = append(conf.Tags, t.ID())
				}
			}
		case "alerts", "acls", "fencing-topology":
			// Tags are only unsupported when a constraint refers to one,
			// which then fails as an unknown resource. Alerts, ACLs and the
			// fencing topology do not influence scheduling.
		default:
			return nil, unsupported(sec)
		}
		if err != nil {
			return nil, err
		}
	}
	return conf, nil
}

// nvsets converts the attribute-set children of e whose element name is one
// of kinds; other children are an error, except utilization which is ignored
// (it only matters for placement strategies other than "default").
func (p *converter) nvsets(e *Element, kinds ...string) ([]*NVSet, error) {
	var out []*NVSet
	for _, c := range e.Children {
		if !contains(kinds, c.Name) {
			if c.Name == "utilization" {
				continue
			}
			return nil, unsupported(c)
		}
		s, err := p.nvset(c)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// attrSet reads c, a meta_attributes or instance_attributes block of a
// resource or operation, and appends it to meta or instance by its kind.
func (p *converter) attrSet(c *Element, meta, instance *[]*NVSet) (*NVSet, error) {
	s, err := p.nvset(c)
	if err != nil {
		return nil, err
	}
	if c.Name == "meta_attributes" {
		*meta = append(*meta, s)
	} else {
		*instance = append(*instance, s)
	}
	return s, nil
}

func (p *converter) nvset(e *Element) (*NVSet, error) {
	src, err := p.deref(e)
	if err != nil {
		return nil, err
	}
	s := &NVSet{Kind: e.Name, ID: src.ID(), Score: src.Attrs.Value("score")}
	if e != src && e.ID() != "" {
		s.ID = e.ID()
	}
	for _, c := range src.Children {
		switch c.Name {
		case "nvpair":
			pair, err := p.nvpair(c)
			if err != nil {
				return nil, err
			}
			s.Pairs = append(s.Pairs, pair)
		case "rule":
			if s.Rule != nil {
				return nil, invalid(src, "more than one rule")
			}
			r, err := p.rule(c)
			if err != nil {
				return nil, err
			}
			s.Rule = r
		case "attributes":
			// Pre-1.0 syntax wrapped the pairs in <attributes>.
			for _, cc := range c.Children {
				if cc.Name != "nvpair" {
					return nil, unsupported(cc)
				}
				pair, err := p.nvpair(cc)
				if err != nil {
					return nil, err
				}
				s.Pairs = append(s.Pairs, pair)
			}
		default:
			return nil, unsupported(c)
		}
	}
	return s, nil
}

// nvpair resolves id-ref the way Pacemaker does: the referring element's own
// name and value win, and the referenced pair supplies what is missing.
func (p *converter) nvpair(e *Element) (NVPair, error) {
	pair := NVPair{ID: e.ID()}
	name, hasName := e.Attrs.Get("name")
	value, hasValue := e.Attrs.Get("value")
	if ref, ok := e.Attrs.Get("id-ref"); ok {
		t, found := p.ids[ref]
		if !found || t.Name != "nvpair" {
			return pair, invalid(e, "nvpair id-ref %q does not exist", ref)
		}
		if !hasName {
			name, hasName = t.Attrs.Get("name")
		}
		if !hasValue {
			value, hasValue = t.Attrs.Get("value")
		}
		if pair.ID == "" {
			pair.ID = ref
		}
	}
	if !hasName {
		return pair, invalid(e, "nvpair without a name")
	}
	pair.Name, pair.Value, pair.HasValue = name, value, hasValue
	return pair, nil
}

func (p *converter) rule(e *Element) (*Rule, error) {
	return p.ruleAt(e, 0)
}

// ruleAt converts a rule nested depth levels deep. The depth limit stops
// id-ref cycles (a rule that refers to one of its ancestors).
func (p *converter) ruleAt(e *Element, depth int) (*Rule, error) {
	if depth > maxDepth {
		return nil, invalid(e, "rules nested deeper than %d (id-ref cycle?)", maxDepth)
	}
	src, err := p.deref(e)
	if err != nil {
		return nil, err
	}
	r := &Rule{
		ID:             src.ID(),
		Score:          src.Attrs.Value("score"),
		ScoreAttribute: src.Attrs.Value("score-attribute"),
		BooleanOp:      src.Attrs.Value("boolean-op"),
		Role:           src.Attrs.Value("role"),
	}
	for _, c := range src.Children {
		switch c.Name {
		case "expression":
			x := &Expression{
				ID:          c.ID(),
				Attribute:   c.Attrs.Value("attribute"),
				Operation:   c.Attrs.Value("operation"),
				Type:        c.Attrs.Value("type"),
				ValueSource: c.Attrs.Value("value-source"),
			}
			x.Value, x.HasValue = c.Attrs.Get("value")
			if x.ValueSource != "" && x.ValueSource != "literal" {
				return nil, unsupported(c)
			}
			switch x.Operation {
			case "lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined":
			default:
				return nil, invalid(c, "unknown operation %q", x.Operation)
			}
			r.Expressions = append(r.Expressions, x)
		case "rule":
			sub, err := p.ruleAt(c, depth+1)
			if err != nil {
				return nil, err
			}
			r.Rules = append(r.Rules, sub)
		default:
			// date_expression, op_expression, rsc_expression, ...
			return nil, unsupported(c)
		}
	}
	return r, nil
}

func (p *converter) nodes(sec *Element, conf *Configuration) error {
	for _, e := range sec.Children {
		if e.Name != "node" {
			return unsupported(e)
		}
		n := &Node{ID: e.ID(), Uname: e.Attrs.Value("uname"), Type: e.Attrs.Value("type"), Score: e.Attrs.Value("score")}
		if n.ID == "" {
			return invalid(e, "node without id")
		}
		if n.Uname == "" {
			n.Uname = n.ID
		}
		switch n.Type {
		case "", "member", "normal":
		default:
			return unsupported(e)
		}
		sets, err := p.nvsets(e, "instance_attributes")
		if err != nil {
			return err
		}
		n.Attrs = sets
		conf.Nodes = append(conf.Nodes, n)
	}
	return nil
}

func (p *converter) resources(sec *Element, conf *Configuration) error {
	seen := map[string]bool{}
	for _, e := range sec.Children {
		var r *Resource
		var err error
		switch e.Name {
		case "primitive":
			r, err = p.primitive(e)
		case "group":
			r, err = p.group(e)
		default:
			// clone, master, bundle, template
			return unsupported(e)
		}
		if err != nil {
			return err
		}
		for _, id := range append([]string{r.ID}, childIDs(r)...) {
			if seen[id] {
				return invalid(e, "duplicate resource id %q", id)
			}
			seen[id] = true
		}
		conf.Resources = append(conf.Resources, r)
	}
	return nil
}

func childIDs(r *Resource) []string {
	var out []string
	for _, c := range r.Children {
		out = append(out, c.ID)
	}
	return out
}

func (p *converter) primitive(e *Element) (*Resource, error) {
	r := &Resource{
		Kind:        "primitive",
		ID:          e.ID(),
		Class:       e.Attrs.Value("class"),
		Provider:    e.Attrs.Value("provider"),
		Type:        e.Attrs.Value("type"),
		Description: e.Attrs.Value("description"),
	}
	if r.ID == "" {
		return nil, invalid(e, "primitive without id")
	}
	if _, ok := e.Attrs.Get("template"); ok {
		return nil, unsupported(e)
	}
	if r.Class == "" || r.Type == "" {
		return nil, invalid(e, "primitive needs class and type")
	}
	if r.Class == "ocf" && r.Provider == "" {
		return nil, invalid(e, "ocf primitive needs a provider")
	}
	if r.Class == "ocf" && r.Provider == "pacemaker" && r.Type == "remote" {
		return nil, unsupported(e) // Pacemaker Remote connection
	}
	for _, c := range e.Children {
		switch c.Name {
		case "meta_attributes", "instance_attributes":
			s, err := p.attrSet(c, &r.Meta, &r.Instance)
			if err != nil {
				return nil, err
			}
			for _, pair := range s.Pairs {
				if s.Kind == "meta_attributes" && (pair.Name == "remote-node" || pair.Name == "container") {
					return nil, unsupported(e) // guest nodes and containers
				}
			}
		case "operations":
			src, err := p.deref(c)
			if err != nil {
				return nil, err
			}
			for _, oe := range src.Children {
				if oe.Name != "op" {
					return nil, unsupported(oe)
				}
				op, err := p.op(oe)
				if err != nil {
					return nil, err
				}
				r.Ops = append(r.Ops, op)
			}
		case "utilization":
		default:
			return nil, unsupported(c)
		}
	}
	return r, nil
}

func (p *converter) op(e *Element) (*Op, error) {
	src, err := p.deref(e)
	if err != nil {
		return nil, err
	}
	o := &Op{
		ID:       src.ID(),
		Name:     src.Attrs.Value("name"),
		Interval: src.Attrs.Value("interval"),
		Role:     src.Attrs.Value("role"),
		Attrs:    src.Attrs.Clone(),
	}
	if o.Name == "" {
		return nil, invalid(e, "op without a name")
	}
	for _, c := range src.Children {
		switch c.Name {
		case "meta_attributes", "instance_attributes":
			if _, err := p.attrSet(c, &o.Meta, &o.Instance); err != nil {
				return nil, err
			}
		default:
			return nil, unsupported(c)
		}
	}
	return o, nil
}

func (p *converter) group(e *Element) (*Resource, error) {
	r := &Resource{Kind: "group", ID: e.ID(), Description: e.Attrs.Value("description")}
	if r.ID == "" {
		return nil, invalid(e, "group without id")
	}
	for _, c := range e.Children {
		switch c.Name {
		case "primitive":
			child, err := p.primitive(c)
			if err != nil {
				return nil, err
			}
			r.Children = append(r.Children, child)
		case "meta_attributes", "instance_attributes":
			if _, err := p.attrSet(c, &r.Meta, &r.Instance); err != nil {
				return nil, err
			}
		case "utilization":
		default:
			return nil, unsupported(c)
		}
	}
	if len(r.Children) == 0 {
		return nil, invalid(e, "group without members")
	}
	return r, nil
}

func (p *converter) constraints(sec *Element, conf *Configuration) error {
	for _, e := range sec.Children {
		for _, c := range e.Children {
			if c.Name == "resource_set" {
				return unsupported(c)
			}
		}
		switch e.Name {
		case "rsc_location":
			l := &Location{
				ID:        e.ID(),
				Rsc:       e.Attrs.Value("rsc"),
				Node:      e.Attrs.Value("node"),
				Score:     e.Attrs.Value("score"),
				Role:      e.Attrs.Value("role"),
				Discovery: e.Attrs.Value("resource-discovery"),
			}
			if _, ok := e.Attrs.Get("rsc-pattern"); ok {
				return unsupported(e)
			}
			if l.Rsc == "" {
				return invalid(e, "rsc_location without rsc")
			}
			for _, c := range e.Children {
				if c.Name != "rule" {
					return unsupported(c)
				}
				r, err := p.rule(c)
				if err != nil {
					return err
				}
				l.Rules = append(l.Rules, r)
			}
			if l.Node == "" && len(l.Rules) == 0 {
				return invalid(e, "rsc_location needs a node or a rule")
			}
			conf.Locations = append(conf.Locations, l)
			conf.Constraints = append(conf.Constraints, l)
		case "rsc_colocation":
			c := &Colocation{
				ID:            e.ID(),
				Rsc:           e.Attrs.Value("rsc"),
				WithRsc:       e.Attrs.Value("with-rsc"),
				Score:         e.Attrs.Value("score"),
				RscRole:       e.Attrs.Value("rsc-role"),
				WithRscRole:   e.Attrs.Value("with-rsc-role"),
				NodeAttribute: e.Attrs.Value("node-attribute"),
				Influence:     e.Attrs.Value("influence"),
			}
			if c.Rsc == "" || c.WithRsc == "" {
				return invalid(e, "rsc_colocation needs rsc and with-rsc")
			}
			if len(e.Children) > 0 {
				return unsupported(e.Children[0])
			}
			conf.Colocations = append(conf.Colocations, c)
			conf.Constraints = append(conf.Constraints, c)
		case "rsc_order":
			o := &Order{
				ID:          e.ID(),
				First:       e.Attrs.Value("first"),
				Then:        e.Attrs.Value("then"),
				FirstAction: e.Attrs.Value("first-action"),
				ThenAction:  e.Attrs.Value("then-action"),
				Kind:        e.Attrs.Value("kind"),
				Score:       e.Attrs.Value("score"),
				Symmetrical: e.Attrs.Value("symmetrical"),
			}
			for _, a := range []string{"first-instance", "then-instance", "require-all"} {
				if _, ok := e.Attrs.Get(a); ok {
					return unsupported(e)
				}
			}
			if o.First == "" || o.Then == "" {
				return invalid(e, "rsc_order needs first and then")
			}
			if len(e.Children) > 0 {
				return unsupported(e.Children[0])
			}
			conf.Orders = append(conf.Orders, o)
			conf.Constraints = append(conf.Constraints, o)
		default:
			// rsc_ticket and anything newer
			return unsupported(e)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
