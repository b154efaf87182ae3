package cibtoml

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// ErrNotRepresentable is wrapped when a CIB uses something the TOML model
// has no place for (attribute sets with rules or scores, nested rules,
// op-level attribute sets); export the XML instead.
var ErrNotRepresentable = fmt.Errorf("cibtoml: not representable in TOML")

func notRep(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotRepresentable, fmt.Sprintf(format, args...))
}

// values merges plain attribute sets into one table; sets with a rule or a
// score cannot be expressed.
func values(owner string, sets []*cib.NVSet) (Values, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	v := Values{}
	for _, s := range sets {
		if s.Rule != nil || s.Score != "" {
			return nil, notRep("%s: <%s id=%q> has a rule or a score", owner, s.Kind, s.ID)
		}
		for _, p := range s.Pairs {
			if _, dup := v[p.Name]; p.HasValue && !dup {
				v[p.Name] = Value{p.Value}
			}
		}
	}
	return v, nil
}

// FromConfig converts a typed configuration into the TOML model (for
// `ringctl crm export --toml`). Building the result gives an equivalent
// configuration; generated ids (attribute sets, ops, rules) may differ
// from the original's, constraint and node ids are kept.
func FromConfig(conf *cib.Configuration) (*Model, error) {
	m := &Model{}
	var err error
	if m.Cluster, err = values("crm_config", conf.CrmConfig); err != nil {
		return nil, err
	}
	if m.RscDefaults, err = values("rsc_defaults", conf.RscDefaults); err != nil {
		return nil, err
	}
	if m.OpDefaults, err = values("op_defaults", conf.OpDefaults); err != nil {
		return nil, err
	}
	for _, n := range conf.Nodes {
		attrs, err := values("node "+n.Uname, n.Attrs)
		if err != nil {
			return nil, err
		}
		id := n.ID
		if id == n.Uname {
			id = ""
		}
		m.Nodes = append(m.Nodes, Node{Name: n.Uname, ID: id, Attributes: attrs})
	}
	var walk func(r *cib.Resource) error
	walk = func(r *cib.Resource) error {
		meta, err := values(r.ID, r.Meta)
		if err != nil {
			return err
		}
		switch r.Kind {
		case "primitive":
			p, err := primitiveFrom(r, meta)
			if err != nil {
				return err
			}
			m.Resources = append(m.Resources, p)
		case "group":
			g := Group{ID: r.ID, Meta: meta}
			for _, c := range r.Children {
				g.Members = append(g.Members, c.ID)
				if err := walk(c); err != nil {
					return err
				}
			}
			m.Groups = append(m.Groups, g)
		case "clone", "master":
			if len(r.Children) != 1 {
				return notRep("clone %q without exactly one child", r.ID)
			}
			c := Clone{ID: r.ID, Resource: r.Children[0].ID, Meta: meta, Promotable: r.Kind == "master"}
			if v, ok := meta["promotable"]; ok {
				c.Promotable = cib.IsTrue(v.S)
				delete(c.Meta, "promotable")
			}
			if len(c.Meta) == 0 {
				c.Meta = nil
			}
			if err := walk(r.Children[0]); err != nil {
				return err
			}
			m.Clones = append(m.Clones, c)
		default:
			return notRep("resource %q of kind %s", r.ID, r.Kind)
		}
		if len(r.Instance) > 0 && r.Kind != "primitive" {
			return notRep("%s %q has instance attributes", r.Kind, r.ID)
		}
		return nil
	}
	for _, r := range conf.Resources {
		if err := walk(r); err != nil {
			return nil, err
		}
	}
	for _, c := range conf.Constraints {
		switch x := c.(type) {
		case *cib.Location:
			l := Location{ID: x.ID, Resource: x.Rsc, Node: x.Node, Score: Value{x.Score}, Role: x.Role, Discovery: x.Discovery}
			for _, r := range x.Rules {
				if len(r.Rules) > 0 {
					return nil, notRep("location %q has nested rules", x.ID)
				}
				rule := Rule{Score: Value{r.Score}, ScoreAttribute: r.ScoreAttribute, BooleanOp: r.BooleanOp, Role: r.Role}
				for _, e := range r.Expressions {
					ex := Expr{Attribute: e.Attribute, Operation: e.Operation, Type: e.Type}
					if e.HasValue {
						ex.Value = &Value{e.Value}
					}
					rule.Expressions = append(rule.Expressions, ex)
				}
				l.Rules = append(l.Rules, rule)
			}
			m.Locations = append(m.Locations, l)
		case *cib.Colocation:
			m.Colocations = append(m.Colocations, Colocation{ID: x.ID, Resource: x.Rsc, With: x.WithRsc, Score: Value{x.Score},
				Role: x.RscRole, WithRole: x.WithRscRole, NodeAttribute: x.NodeAttribute})
		case *cib.Order:
			o := Order{ID: x.ID, First: x.First, Then: x.Then, FirstAction: x.FirstAction, ThenAction: x.ThenAction, Kind: x.Kind}
			if o.Kind == "" && x.Score != "" {
				// The deprecated score form: 0 is Optional, anything else Mandatory.
				if x.Score == "0" {
					o.Kind = "Optional"
				} else {
					o.Kind = "Mandatory"
				}
			}
			if x.Symmetrical != "" {
				b := cib.IsTrue(x.Symmetrical)
				o.Symmetrical = &b
			}
			if x.RequireAll != "" {
				b := cib.IsTrue(x.RequireAll)
				o.RequireAll = &b
			}
			m.Orders = append(m.Orders, o)
		}
	}
	return m, nil
}

func primitiveFrom(r *cib.Resource, meta Values) (Resource, error) {
	agent := r.Class + ":" + r.Type
	if r.Provider != "" {
		agent = r.Class + ":" + r.Provider + ":" + r.Type
	}
	params, err := values(r.ID, r.Instance)
	if err != nil {
		return Resource{}, err
	}
	p := Resource{ID: r.ID, Agent: agent, Description: r.Description, Params: params, Meta: meta}
	for _, o := range r.Ops {
		if len(o.Meta) > 0 || len(o.Instance) > 0 {
			return Resource{}, notRep("op %q has attribute sets", o.ID)
		}
		op := Op{Name: o.Name, Interval: Value{o.Interval}, Timeout: Value{o.Attrs.Value("timeout")}, Role: o.Role, OnFail: o.Attrs.Value("on-fail")}
		if op.Interval.S == "0s" {
			op.Interval.S = ""
		}
		for _, a := range o.Attrs {
			switch a.Name {
			case "id", "name", "interval", "timeout", "role", "on-fail":
			case "enabled":
				b := cib.IsTrue(a.Value)
				op.Enabled = &b
			default:
				if op.Meta == nil {
					op.Meta = Values{}
				}
				op.Meta[a.Name] = Value{a.Value}
			}
		}
		p.Ops = append(p.Ops, op)
	}
	return p, nil
}

// Encode writes the model as TOML in the layout of examples/resources.toml.
func (m *Model) Encode(w io.Writer) error {
	var b strings.Builder
	table := func(name string, v Values) {
		if len(v) == 0 {
			return
		}
		fmt.Fprintf(&b, "[%s]\n", name)
		for _, k := range sortedValueKeys(v) {
			fmt.Fprintf(&b, "%s = %s\n", key(k), str(v[k].S))
		}
		b.WriteString("\n")
	}
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", k, str(v))
		}
	}
	inline := func(k string, v Values) {
		if len(v) > 0 {
			fmt.Fprintf(&b, "%s = %s\n", k, inlineTable(v))
		}
	}
	boolp := func(k string, v *bool) {
		if v != nil {
			fmt.Fprintf(&b, "%s = %t\n", k, *v)
		}
	}
	table("cluster", m.Cluster)
	table("rsc_defaults", m.RscDefaults)
	table("op_defaults", m.OpDefaults)
	for _, n := range m.Nodes {
		b.WriteString("[[node]]\n")
		kv("name", n.Name)
		kv("id", n.ID)
		inline("attributes", n.Attributes)
		inline("utilization", n.Utilization)
		b.WriteString("\n")
	}
	for _, r := range m.Resources {
		b.WriteString("[[resource]]\n")
		kv("id", r.ID)
		kv("agent", r.Agent)
		kv("description", r.Description)
		inline("params", r.Params)
		inline("meta", r.Meta)
		inline("utilization", r.Utilization)
		for _, o := range r.Ops {
			b.WriteString("[[resource.op]]\n")
			kv("name", o.Name)
			kv("interval", o.Interval.S)
			kv("timeout", o.Timeout.S)
			kv("role", o.Role)
			kv("on-fail", o.OnFail)
			boolp("enabled", o.Enabled)
			inline("meta", o.Meta)
		}
		b.WriteString("\n")
	}
	for _, g := range m.Groups {
		b.WriteString("[[group]]\n")
		kv("id", g.ID)
		quoted := make([]string, len(g.Members))
		for i, s := range g.Members {
			quoted[i] = str(s)
		}
		fmt.Fprintf(&b, "members = [%s]\n", strings.Join(quoted, ", "))
		inline("meta", g.Meta)
		b.WriteString("\n")
	}
	for _, c := range m.Clones {
		b.WriteString("[[clone]]\n")
		kv("id", c.ID)
		kv("resource", c.Resource)
		if c.Promotable {
			b.WriteString("promotable = true\n")
		}
		inline("meta", c.Meta)
		b.WriteString("\n")
	}
	for _, l := range m.Locations {
		b.WriteString("[[location]]\n")
		kv("id", l.ID)
		kv("resource", l.Resource)
		kv("node", l.Node)
		kv("score", l.Score.S)
		kv("role", l.Role)
		kv("resource-discovery", l.Discovery)
		for _, r := range l.Rules {
			b.WriteString("[[location.rule]]\n")
			kv("score", r.Score.S)
			kv("score-attribute", r.ScoreAttribute)
			kv("boolean-op", r.BooleanOp)
			kv("role", r.Role)
			for _, x := range r.Expressions {
				b.WriteString("[[location.rule.expression]]\n")
				kv("attribute", x.Attribute)
				kv("operation", x.Operation)
				if x.Value != nil {
					fmt.Fprintf(&b, "value = %s\n", str(x.Value.S))
				}
				kv("type", x.Type)
			}
		}
		b.WriteString("\n")
	}
	for _, c := range m.Colocations {
		b.WriteString("[[colocation]]\n")
		kv("id", c.ID)
		kv("resource", c.Resource)
		kv("with", c.With)
		kv("score", c.Score.S)
		kv("role", c.Role)
		kv("with-role", c.WithRole)
		kv("node-attribute", c.NodeAttribute)
		b.WriteString("\n")
	}
	for _, o := range m.Orders {
		b.WriteString("[[order]]\n")
		kv("id", o.ID)
		kv("first", o.First)
		kv("first-action", o.FirstAction)
		kv("then", o.Then)
		kv("then-action", o.ThenAction)
		kv("kind", o.Kind)
		boolp("symmetrical", o.Symmetrical)
		boolp("require-all", o.RequireAll)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

func sortedValueKeys(v Values) []string {
	ks := make([]string, 0, len(v))
	for k := range v {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func inlineTable(v Values) string {
	parts := make([]string, 0, len(v))
	for _, k := range sortedValueKeys(v) {
		parts = append(parts, key(k)+" = "+str(v[k].S))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// key quotes a TOML key unless it is a bare key.
func key(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// str writes a value as a TOML basic string (TOML escapes are a subset of
// Go's for the characters strconv.Quote produces, except \x and \u with
// non-printables, which Quote only uses for control characters).
func str(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FromCIB is FromConfig plus what the typed configuration does not carry:
// the utilization of nodes and primitives, read from the verbatim
// configuration element.
func FromCIB(c *cib.CIB) (*Model, error) {
	m, err := FromConfig(c.Config)
	if err != nil {
		return nil, err
	}
	cfg := c.ConfigElement()
	if cfg == nil {
		return m, nil
	}
	util := map[string]Values{} // element id -> utilization
	var walk func(e *cib.Element)
	walk = func(e *cib.Element) {
		for _, ch := range e.Children {
			if ch.Name == "utilization" && (e.Name == "node" || e.Name == "primitive") {
				v := util[e.Name+"/"+e.ID()]
				if v == nil {
					v = Values{}
					util[e.Name+"/"+e.ID()] = v
				}
				for _, p := range ch.Children {
					if val, ok := p.Attrs.Get("value"); p.Name == "nvpair" && ok {
						v[p.Attrs.Value("name")] = Value{val}
					}
				}
			}
			walk(ch)
		}
	}
	walk(cfg)
	for i := range m.Nodes {
		id := m.Nodes[i].ID
		if id == "" {
			id = m.Nodes[i].Name
		}
		m.Nodes[i].Utilization = util["node/"+id]
	}
	for i := range m.Resources {
		m.Resources[i].Utilization = util["primitive/"+m.Resources[i].ID]
	}
	return m, nil
}
