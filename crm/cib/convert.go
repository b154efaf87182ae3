package cib

import "fmt"

// converter turns the parsed XML elements of the configuration section into
// the typed model, resolving id-refs and naming the element and id of
// anything it cannot accept.
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
		case "clone", "master":
			r, err = p.clone(e)
		default:
			// bundle, template
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
		out = append(out, childIDs(c)...)
	}
	return out
}

// clone parses a <clone> (or the older <master>, a promotable clone): one
// primitive or group, with the clone's own meta and instance attributes.
func (p *converter) clone(e *Element) (*Resource, error) {
	r := &Resource{Kind: e.Name, ID: e.ID(), Description: e.Attrs.Value("description")}
	if r.ID == "" {
		return nil, invalid(e, "%s without id", e.Name)
	}
	for _, c := range e.Children {
		var child *Resource
		var err error
		switch c.Name {
		case "primitive":
			child, err = p.primitive(c)
		case "group":
			child, err = p.group(c)
		case "meta_attributes", "instance_attributes":
			_, err = p.attrSet(c, &r.Meta, &r.Instance)
		case "utilization":
		default:
			return nil, unsupported(c)
		}
		if err != nil {
			return nil, err
		}
		if child != nil {
			if len(r.Children) > 0 {
				return nil, invalid(e, "%s with more than one child", e.Name)
			}
			r.Children = append(r.Children, child)
		}
	}
	if len(r.Children) == 0 {
		return nil, invalid(e, "%s without a primitive or group", e.Name)
	}
	return r, nil
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
				RequireAll:  e.Attrs.Value("require-all"),
			}
			for _, a := range []string{"first-instance", "then-instance"} {
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
