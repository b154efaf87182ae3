// Package cibtoml is the declarative TOML form of a CIB configuration
// (`ringctl crm apply -f resources.toml`): resources with an agent, params,
// ops and meta; groups; clones and promotable clones; location, colocation
// and order constraints; resource and operation defaults; cluster options;
// node attributes and utilization. examples/resources.toml documents every
// key.
//
// Parse decodes and checks a file: syntax errors, wrong types, unknown keys
// and invalid values are all reported as config.Errors, each naming the
// file, the line and the key, and nothing is returned. Build turns a Model
// into the <configuration> element of a CIB (ids generated the way pcs
// names them), which cibedit.ReplaceConfig installs with a version bump.
// FromConfig is the reverse, for `ringctl crm export --toml`.
//
// Everything is pure: no I/O beyond what the caller passes in.
package cibtoml

import (
	"fmt"
	"strconv"
)

// Model is a whole resources.toml.
type Model struct {
	// Cluster holds the cluster options (crm_config
	// cib-bootstrap-options): stonith-enabled, no-quorum-policy, ...
	Cluster     Values       `toml:"cluster"`
	RscDefaults Values       `toml:"rsc_defaults"`
	OpDefaults  Values       `toml:"op_defaults"`
	Nodes       []Node       `toml:"node"`
	Resources   []Resource   `toml:"resource"`
	Groups      []Group      `toml:"group"`
	Clones      []Clone      `toml:"clone"`
	Locations   []Location   `toml:"location"`
	Colocations []Colocation `toml:"colocation"`
	Orders      []Order      `toml:"order"`

	file  string         // for errors: the file name Parse was given
	lines map[string]int // for errors: key path -> line
}

// Values is a set of name = value pairs (instance or meta attributes).
type Values map[string]Value

// Value is a TOML string, integer, float or boolean, kept as the string
// Pacemaker stores (true/false, decimal numbers).
type Value struct{ S string }

// UnmarshalTOML implements toml.Unmarshaler.
func (v *Value) UnmarshalTOML(x any) error {
	switch t := x.(type) {
	case string:
		v.S = t
	case int64:
		v.S = strconv.FormatInt(t, 10)
	case float64:
		v.S = strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		v.S = strconv.FormatBool(t)
	default:
		return fmt.Errorf("must be a string, number or boolean, not %T", x)
	}
	return nil
}

// Node is a cluster node with permanent attributes and utilization.
type Node struct {
	Name        string `toml:"name"`
	ID          string `toml:"id"`
	Attributes  Values `toml:"attributes"`
	Utilization Values `toml:"utilization"`
}

// Resource is a primitive.
type Resource struct {
	ID string `toml:"id"`
	// Agent is class:type or ocf:provider:type ("ocf:heartbeat:IPaddr2",
	// "builtin:vip", "lsb:nginx", "systemd:nginx", "stonith:fence_dummy").
	Agent       string `toml:"agent"`
	Description string `toml:"description"`
	Params      Values `toml:"params"`
	Meta        Values `toml:"meta"`
	Utilization Values `toml:"utilization"`
	Ops         []Op   `toml:"op"`
}

// Op is an operation definition.
type Op struct {
	Name     string `toml:"name"`
	Interval Value  `toml:"interval"`
	Timeout  Value  `toml:"timeout"`
	Role     string `toml:"role"`
	OnFail   string `toml:"on-fail"`
	// Enabled false disables a recurring monitor (enabled="false").
	Enabled *bool `toml:"enabled"`
	// Meta holds other op attributes (start-delay, record-pending, ...).
	Meta Values `toml:"meta"`
}

// Group is an ordered, colocated set of primitives.
type Group struct {
	ID      string   `toml:"id"`
	Members []string `toml:"members"`
	Meta    Values   `toml:"meta"`
}

// Clone runs a primitive or a group on several nodes; Promotable makes it
// a promotable clone (promotable=true meta attribute).
type Clone struct {
	ID         string `toml:"id"`
	Resource   string `toml:"resource"`
	Promotable bool   `toml:"promotable"`
	Meta       Values `toml:"meta"`
}

// Location is an rsc_location: a score for a node, or rules.
type Location struct {
	ID        string `toml:"id"`
	Resource  string `toml:"resource"`
	Node      string `toml:"node"`
	Score     Value  `toml:"score"`
	Role      string `toml:"role"`
	Discovery string `toml:"resource-discovery"`
	Rules     []Rule `toml:"rule"`
}

// Rule is a location rule over node attributes.
type Rule struct {
	Score          Value  `toml:"score"`
	ScoreAttribute string `toml:"score-attribute"`
	BooleanOp      string `toml:"boolean-op"`
	Role           string `toml:"role"`
	Expressions    []Expr `toml:"expression"`
}

// Expr is a node attribute expression: attribute operation value.
type Expr struct {
	Attribute string `toml:"attribute"`
	Operation string `toml:"operation"`
	Value     *Value `toml:"value"`
	Type      string `toml:"type"`
}

// Colocation is an rsc_colocation: Resource placed relative to With.
type Colocation struct {
	ID            string `toml:"id"`
	Resource      string `toml:"resource"`
	With          string `toml:"with"`
	Score         Value  `toml:"score"`
	Role          string `toml:"role"`
	WithRole      string `toml:"with-role"`
	NodeAttribute string `toml:"node-attribute"`
}

// Order is an rsc_order: First's action before Then's.
type Order struct {
	ID          string `toml:"id"`
	First       string `toml:"first"`
	Then        string `toml:"then"`
	FirstAction string `toml:"first-action"`
	ThenAction  string `toml:"then-action"`
	Kind        string `toml:"kind"`
	Symmetrical *bool  `toml:"symmetrical"`
	// RequireAll false lets any one instance of a cloned first satisfy
	// the order (require-all="false").
	RequireAll *bool `toml:"require-all"`
}
