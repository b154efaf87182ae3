package cibtoml

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"ringmaster/config"
	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
)

// builder accumulates the configuration and every problem found.
type builder struct {
	m    *Model
	errs config.Errors
	ids  map[string]bool
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, &config.FieldError{File: b.m.file, Line: lookup(b.m.lines, path), Key: display(path), Msg: fmt.Sprintf(format, args...)})
}

// id returns a unique, sanitized id derived from base.
func (b *builder) id(base string) string {
	id := cibedit.SanitizeID(base)
	for i := 1; b.ids[id]; i++ {
		id = cibedit.SanitizeID(base) + "-" + strconv.Itoa(i)
	}
	b.ids[id] = true
	return id
}

// claim registers an id the user chose; a duplicate is an error.
func (b *builder) claim(path, id string) bool {
	if id == "" {
		b.errorf(path, "an id is required")
		return false
	}
	if cibedit.SanitizeID(id) != id {
		b.errorf(path, "%q is not a valid XML id (letters, digits, '_', '-', '.'; not starting with a digit)", id)
		return false
	}
	if b.ids[id] {
		b.errorf(path, "id %q is used twice", id)
		return false
	}
	b.ids[id] = true
	return true
}

func el(name string, attrs ...string) *cib.Element {
	e := &cib.Element{Name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			e.Attrs = append(e.Attrs, cib.Attr{Name: attrs[i], Value: attrs[i+1]})
		}
	}
	return e
}

// nvset builds an attribute set with one nvpair per value, sorted by name
// (a TOML table has no order); nil when vals is empty.
func (b *builder) nvset(kind, setID string, vals Values) *cib.Element {
	if len(vals) == 0 {
		return nil
	}
	set := el(kind, "id", b.id(setID))
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := el("nvpair", "id", b.id(setID+"-"+k), "name", k)
		p.Attrs = append(p.Attrs, cib.Attr{Name: "value", Value: vals[k].S})
		set.Children = append(set.Children, p)
	}
	return set
}

func add(parent *cib.Element, children ...*cib.Element) {
	for _, c := range children {
		if c != nil {
			parent.Children = append(parent.Children, c)
		}
	}
}

var (
	scoreRe    = regexp.MustCompile(`^[-+]?([0-9]+|INFINITY)$`)
	durationRe = regexp.MustCompile(`^([0-9]+ *(ms|msec|us|usec|s|sec|m|min|h|hr)?|P[0-9A-Z]+|PT[0-9A-Z.]+)$`)
	classes    = map[string]bool{"ocf": true, "lsb": true, "stonith": true, "systemd": true, "service": true, "builtin": true, "upstart": true, "nagios": true}
	roles      = []string{"Started", "Stopped", "Promoted", "Unpromoted", "Master", "Slave"}
	onFails    = []string{"ignore", "block", "stop", "restart", "standby", "fence", "demote", "restart-container"}
	actions    = []string{"start", "stop", "promote", "demote"}
	kinds      = []string{"Mandatory", "Optional", "Serialize"}
	exprOps    = []string{"lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined"}
	exprTypes  = []string{"string", "integer", "number", "version"}
)

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

func (b *builder) check(path, v string, list []string) {
	if v != "" && !oneOf(v, list) {
		b.errorf(path, "%q is not one of %s", v, strings.Join(list, ", "))
	}
}

func (b *builder) score(path string, v Value, required bool) string {
	if v.S == "" {
		if required {
			b.errorf(path, "a score is required (an integer or [-]INFINITY)")
		}
		return ""
	}
	if !scoreRe.MatchString(v.S) {
		b.errorf(path, "%q is not a score (an integer or [-]INFINITY)", v.S)
	}
	return v.S
}

// ParseAgent splits class:type or ocf:provider:type.
func ParseAgent(agent string) (class, provider, typ string, err error) {
	parts := strings.Split(agent, ":")
	switch {
	case len(parts) == 3 && parts[0] == "ocf" && parts[1] != "" && parts[2] != "":
		return parts[0], parts[1], parts[2], nil
	case len(parts) == 2 && parts[0] != "ocf" && classes[parts[0]] && parts[1] != "":
		return parts[0], "", parts[1], nil
	}
	return "", "", "", fmt.Errorf("%q is not an agent (ocf:PROVIDER:TYPE, or builtin:, lsb:, systemd:, service:, stonith: followed by TYPE)", agent)
}

// Build converts the model into a <configuration> element. Resources are
// written in the order they first appear in the file: a group where its
// first member (or the group itself) is declared, a clone where what it
// wraps is; the scheduler breaks ties by this order. The error is a
// config.Errors naming every problem.
func (m *Model) Build() (*cib.Element, error) {
	b := &builder{m: m, ids: map[string]bool{}}
	cfg := el("configuration")
	crm := el("crm_config")
	add(crm, b.nvset("cluster_property_set", "cib-bootstrap-options", m.Cluster))
	nodes := el("nodes")
	for i, n := range m.Nodes {
		path := "node." + strconv.Itoa(i)
		if n.Name == "" {
			b.errorf(path+".name", "a node name is required")
			continue
		}
		id := n.ID
		if id == "" {
			id = n.Name
		}
		// Node ids are corosync node ids ("1"): not XML ids, but unique.
		if b.ids[id] {
			b.errorf(path+".id", "id %q is used twice", id)
			continue
		}
		b.ids[id] = true
		ne := el("node", "id", id, "uname", n.Name)
		add(ne, b.nvset("instance_attributes", "nodes-"+id, n.Attributes), b.nvset("utilization", "nodes-"+id+"-utilization", n.Utilization))
		nodes.Children = append(nodes.Children, ne)
	}

	// Resource ids first, so constraints and groups can refer to any.
	prims := map[string]*cib.Element{}
	for i, r := range m.Resources {
		path := "resource." + strconv.Itoa(i)
		if !b.claim(path+".id", r.ID) {
			continue
		}
		prims[r.ID] = b.primitive(path, r)
	}
	inGroup := map[string]string{}
	groups := map[string]*cib.Element{}
	for i, g := range m.Groups {
		path := "group." + strconv.Itoa(i)
		if !b.claim(path+".id", g.ID) {
			continue
		}
		ge := el("group", "id", g.ID)
		if len(g.Members) == 0 {
			b.errorf(path+".members", "a group needs members")
		}
		for _, mem := range g.Members {
			p, ok := prims[mem]
			switch {
			case !ok:
				b.errorf(path+".members", "%q is not a [[resource]]", mem)
			case inGroup[mem] != "":
				b.errorf(path+".members", "%q is already a member of group %q", mem, inGroup[mem])
			default:
				inGroup[mem] = g.ID
				ge.Children = append(ge.Children, p)
			}
		}
		add(ge, b.nvset("meta_attributes", g.ID+"-meta_attributes", g.Meta))
		groups[g.ID] = ge
	}
	cloned := map[string]string{}
	clones := map[string]*cib.Element{}
	for i, c := range m.Clones {
		path := "clone." + strconv.Itoa(i)
		if !b.claim(path+".id", c.ID) {
			continue
		}
		ce := el("clone", "id", c.ID)
		inner := prims[c.Resource]
		if g, ok := groups[c.Resource]; ok {
			inner = g
		}
		switch {
		case inner == nil:
			b.errorf(path+".resource", "%q is not a [[resource]] or [[group]]", c.Resource)
		case inGroup[c.Resource] != "":
			b.errorf(path+".resource", "%q is a member of group %q; clone the group instead", c.Resource, inGroup[c.Resource])
		case cloned[c.Resource] != "":
			b.errorf(path+".resource", "%q is already cloned by %q", c.Resource, cloned[c.Resource])
		default:
			cloned[c.Resource] = c.ID
			ce.Children = append(ce.Children, inner)
		}
		meta := Values{}
		for k, v := range c.Meta {
			meta[k] = v
		}
		if c.Promotable {
			meta["promotable"] = Value{"true"}
		}
		add(ce, b.nvset("meta_attributes", c.ID+"-meta_attributes", meta))
		clones[c.ID] = ce
	}
	resources := el("resources")
	emitted := map[string]bool{}
	emit := func(id string) {
		top := id
		if g := inGroup[top]; g != "" {
			top = g
		}
		if c := cloned[top]; c != "" {
			top = c
		}
		if emitted[top] {
			return
		}
		emitted[top] = true
		switch {
		case clones[top] != nil:
			resources.Children = append(resources.Children, clones[top])
		case groups[top] != nil:
			resources.Children = append(resources.Children, groups[top])
		case prims[top] != nil:
			resources.Children = append(resources.Children, prims[top])
		}
	}
	for _, r := range m.Resources {
		emit(r.ID)
	}
	for _, g := range m.Groups {
		emit(g.ID)
	}
	for _, c := range m.Clones {
		emit(c.ID)
	}
	known := func(id string) bool { return prims[id] != nil || groups[id] != nil || clones[id] != nil }

	cons := el("constraints")
	for i, l := range m.Locations {
		path := "location." + strconv.Itoa(i)
		if !known(l.Resource) {
			b.errorf(path+".resource", "%q is not a resource, group or clone", l.Resource)
		}
		b.check(path+".role", l.Role, roles)
		b.check(path+".resource-discovery", l.Discovery, []string{"always", "never", "exclusive"})
		id := l.ID
		if id == "" {
			id = b.id("location-" + l.Resource + "-" + l.Node + "-" + l.Score.S)
		} else {
			b.claim(path+".id", id)
		}
		le := el("rsc_location", "id", id, "rsc", l.Resource, "role", l.Role, "resource-discovery", l.Discovery)
		switch {
		case l.Node != "" && len(l.Rules) > 0:
			b.errorf(path+".node", "a location has either a node and a score, or rules")
		case l.Node != "":
			le.Attrs = append(le.Attrs, cib.Attr{Name: "node", Value: l.Node}, cib.Attr{Name: "score", Value: b.score(path+".score", l.Score, true)})
		case len(l.Rules) == 0:
			b.errorf(path, "a location needs a node and a score, or a [[location.rule]]")
		default:
			if l.Score.S != "" {
				b.errorf(path+".score", "with rules, the score goes on each rule")
			}
		}
		for j, r := range l.Rules {
			add(le, b.rule(path+".rule."+strconv.Itoa(j), id+"-rule", r))
		}
		cons.Children = append(cons.Children, le)
	}
	for i, c := range m.Colocations {
		path := "colocation." + strconv.Itoa(i)
		for _, k := range [][2]string{{"resource", c.Resource}, {"with", c.With}} {
			if !known(k[1]) {
				b.errorf(path+"."+k[0], "%q is not a resource, group or clone", k[1])
			}
		}
		b.check(path+".role", c.Role, roles)
		b.check(path+".with-role", c.WithRole, roles)
		// Pacemaker takes a colocation without a score as score 0.
		score := b.score(path+".score", c.Score, false)
		id := c.ID
		if id == "" {
			id = b.id("colocation-" + c.Resource + "-" + c.With + "-" + score)
		} else {
			b.claim(path+".id", id)
		}
		cons.Children = append(cons.Children, el("rsc_colocation", "id", id, "rsc", c.Resource, "with-rsc", c.With, "score", score,
			"rsc-role", c.Role, "with-rsc-role", c.WithRole, "node-attribute", c.NodeAttribute))
	}
	for i, o := range m.Orders {
		path := "order." + strconv.Itoa(i)
		for _, k := range [][2]string{{"first", o.First}, {"then", o.Then}} {
			if !known(k[1]) {
				b.errorf(path+"."+k[0], "%q is not a resource, group or clone", k[1])
			}
		}
		b.check(path+".first-action", o.FirstAction, actions)
		b.check(path+".then-action", o.ThenAction, actions)
		b.check(path+".kind", o.Kind, kinds)
		id := o.ID
		if id == "" {
			id = b.id("order-" + o.First + "-" + o.Then + "-" + strings.ToLower(firstNonEmpty(o.Kind, "Mandatory")))
		} else {
			b.claim(path+".id", id)
		}
		sym := ""
		if o.Symmetrical != nil {
			sym = strconv.FormatBool(*o.Symmetrical)
		}
		reqAll := ""
		if o.RequireAll != nil {
			reqAll = strconv.FormatBool(*o.RequireAll)
		}
		cons.Children = append(cons.Children, el("rsc_order", "id", id, "first", o.First, "first-action", o.FirstAction,
			"then", o.Then, "then-action", o.ThenAction, "kind", o.Kind, "symmetrical", sym, "require-all", reqAll))
	}
	add(cfg, crm, nodes, resources, cons)
	if s := b.nvset("meta_attributes", "rsc-options", m.RscDefaults); s != nil {
		add(cfg, &cib.Element{Name: "rsc_defaults", Children: []*cib.Element{s}})
	}
	if s := b.nvset("meta_attributes", "op-options", m.OpDefaults); s != nil {
		add(cfg, &cib.Element{Name: "op_defaults", Children: []*cib.Element{s}})
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return cfg, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (b *builder) primitive(path string, r Resource) *cib.Element {
	class, provider, typ, err := ParseAgent(r.Agent)
	if err != nil {
		b.errorf(path+".agent", "%v", err)
	}
	p := el("primitive", "id", r.ID, "class", class, "provider", provider, "type", typ, "description", r.Description)
	add(p, b.nvset("instance_attributes", r.ID+"-instance_attributes", r.Params),
		b.nvset("meta_attributes", r.ID+"-meta_attributes", r.Meta),
		b.nvset("utilization", r.ID+"-utilization", r.Utilization))
	if len(r.Ops) > 0 {
		ops := el("operations")
		for j, o := range r.Ops {
			op := b.op(path+".op."+strconv.Itoa(j), r.ID, o)
			ops.Children = append(ops.Children, op)
		}
		p.Children = append(p.Children, ops)
	}
	return p
}

func (b *builder) op(path, rsc string, o Op) *cib.Element {
	if o.Name == "" {
		b.errorf(path+".name", "an op needs a name (monitor, start, stop, promote, ...)")
	}
	interval := firstNonEmpty(o.Interval.S, "0s")
	if !durationRe.MatchString(interval) {
		b.errorf(path+".interval", "%q is not a duration (10s, 500ms, 1m, ...)", interval)
	}
	if o.Timeout.S != "" && !durationRe.MatchString(o.Timeout.S) {
		b.errorf(path+".timeout", "%q is not a duration (20s, 1m, ...)", o.Timeout.S)
	}
	b.check(path+".role", o.Role, roles)
	b.check(path+".on-fail", o.OnFail, onFails)
	id := rsc + "-" + o.Name + "-interval-" + strings.ReplaceAll(interval, " ", "")
	if o.Role != "" {
		id = rsc + "-" + o.Name + "-" + o.Role + "-interval-" + interval
	}
	e := el("op", "id", b.id(id), "name", o.Name, "interval", interval, "timeout", o.Timeout.S, "role", o.Role, "on-fail", o.OnFail)
	if o.Enabled != nil {
		e.Attrs = append(e.Attrs, cib.Attr{Name: "enabled", Value: strconv.FormatBool(*o.Enabled)})
	}
	names := make([]string, 0, len(o.Meta))
	for k := range o.Meta {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch k {
		case "id", "name", "interval", "timeout", "role", "on-fail", "enabled":
			b.errorf(path+".meta."+k, "set %s on the op itself", k)
		default:
			e.Attrs = append(e.Attrs, cib.Attr{Name: k, Value: o.Meta[k].S})
		}
	}
	return e
}

func (b *builder) rule(path, base string, r Rule) *cib.Element {
	id := b.id(base)
	re := el("rule", "id", id, "boolean-op", r.BooleanOp, "role", r.Role)
	switch {
	case r.Score.S != "" && r.ScoreAttribute != "":
		b.errorf(path+".score", "a rule has a score or a score-attribute, not both")
	case r.ScoreAttribute != "":
		re.Attrs = append(re.Attrs, cib.Attr{Name: "score-attribute", Value: r.ScoreAttribute})
	default:
		re.Attrs = append(re.Attrs, cib.Attr{Name: "score", Value: b.score(path+".score", r.Score, true)})
	}
	b.check(path+".boolean-op", r.BooleanOp, []string{"and", "or"})
	b.check(path+".role", r.Role, roles)
	if len(r.Expressions) == 0 {
		b.errorf(path, "a rule needs at least one [[location.rule.expression]]")
	}
	for k, x := range r.Expressions {
		xp := path + ".expression." + strconv.Itoa(k)
		if x.Attribute == "" {
			b.errorf(xp+".attribute", "an expression needs an attribute (a node attribute, #uname, #id, ...)")
		}
		if !oneOf(x.Operation, exprOps) {
			b.errorf(xp+".operation", "%q is not one of %s", x.Operation, strings.Join(exprOps, ", "))
		}
		b.check(xp+".type", x.Type, exprTypes)
		unary := x.Operation == "defined" || x.Operation == "not_defined"
		if unary && x.Value != nil {
			b.errorf(xp+".value", "%s takes no value", x.Operation)
		}
		if !unary && x.Value == nil && oneOf(x.Operation, exprOps) {
			b.errorf(xp+".value", "%s needs a value", x.Operation)
		}
		xe := el("expression", "id", b.id(id+"-expr"), "attribute", x.Attribute, "operation", x.Operation)
		if x.Value != nil {
			xe.Attrs = append(xe.Attrs, cib.Attr{Name: "value", Value: x.Value.S})
		}
		if x.Type != "" {
			xe.Attrs = append(xe.Attrs, cib.Attr{Name: "type", Value: x.Type})
		}
		re.Children = append(re.Children, xe)
	}
	return re
}
