package cibedit

import (
	"fmt"
	"strconv"

	"ringmaster/crm/cib"
)

// Replace is cibadmin --replace of the configuration: the result has next's
// configuration (and its validate-with and crm_feature_set) with cur's
// status and cluster-maintained root attributes (dc-uuid, have-quorum, ...).
//
// Versions: admin_epoch is the larger of the two; when next carries a
// higher admin_epoch, or the same one and a higher epoch, next's epoch is
// kept (an imported Pacemaker CIB keeps its numbers); otherwise the epoch
// becomes cur's plus one, so a replacement always wins over the running
// configuration on every node. num_updates is reset to 0. Unlike
// cibadmin, an older CIB is not refused: `ringctl crm import` means "make
// this the configuration", and its version is bumped past the current one.
func Replace(cur, next *cib.CIB) (*cib.CIB, error) {
	if next == nil {
		return nil, fmt.Errorf("%w: no replacement CIB", ErrUsage)
	}
	cfg := next.ConfigElement()
	if cfg == nil {
		return nil, fmt.Errorf("%w: replacement has no configuration", ErrUsage)
	}
	return replace(cur, cfg, next.Attrs)
}

// ReplaceConfig replaces cur's configuration section with cfg (a
// <configuration> element, e.g. from cibtoml.Build), bumping epoch.
func ReplaceConfig(cur *cib.CIB, cfg *cib.Element) (*cib.CIB, error) {
	if cfg == nil || cfg.Name != "configuration" {
		return nil, fmt.Errorf("%w: want a <configuration> element", ErrUsage)
	}
	return replace(cur, cfg.Clone(), nil)
}

func replace(cur *cib.CIB, cfg *cib.Element, nextAttrs cib.Attrs) (*cib.CIB, error) {
	d, err := open(cur)
	if err != nil {
		return nil, err
	}
	for i, ch := range d.root.Children {
		if ch.Name == "configuration" {
			d.root.Children[i] = cfg
		}
	}
	ver := func(a cib.Attrs, name string) int { n, _ := strconv.Atoi(a.Value(name)); return n }
	ca, ce := ver(d.root.Attrs, "admin_epoch"), ver(d.root.Attrs, "epoch")
	na, ne := ver(nextAttrs, "admin_epoch"), ver(nextAttrs, "epoch")
	admin, epoch := ca, ce+1
	if na > ca || na == ca && ne > ce {
		admin, epoch = na, ne
	}
	for _, a := range []string{"validate-with", "crm_feature_set"} {
		if v, ok := nextAttrs.Get(a); ok {
			d.root.Attrs.Set(a, v)
		}
	}
	d.root.Attrs.Set("admin_epoch", strconv.Itoa(admin))
	d.root.Attrs.Set("epoch", strconv.Itoa(epoch))
	d.root.Attrs.Set("num_updates", "0")
	return cib.FromElement(d.root)
}

// Empty returns an empty CIB (no nodes, resources or status) at version
// 0.0.0, the starting point of a new cluster and of `apply --dry-run`
// without a current CIB.
func Empty() *cib.CIB {
	root := &cib.Element{Name: "cib", Attrs: cib.Attrs{
		{Name: "crm_feature_set", Value: cib.FeatureSet}, {Name: "validate-with", Value: "pacemaker-3.7"},
		{Name: "admin_epoch", Value: "0"}, {Name: "epoch", Value: "0"}, {Name: "num_updates", Value: "0"}},
		Children: []*cib.Element{{Name: "configuration", Children: []*cib.Element{
			{Name: "crm_config"}, {Name: "nodes"}, {Name: "resources"}, {Name: "constraints"}}},
			{Name: "status"}}}
	c, err := cib.FromElement(root)
	if err != nil {
		panic(fmt.Sprintf("cibedit: the empty CIB does not parse: %v", err))
	}
	return c
}

// PacemakerAgents returns c with ringmaster's built-in agents written as
// OCF agents of provider "ringmaster" (class="builtin" type="vip" becomes
// class="ocf" provider="ringmaster" type="vip"), in the configuration and
// in the operation history, without a version change. Pacemaker's schema
// only knows its own classes, so this is the form `ringctl crm export
// --pacemaker` gives crm_verify and Pacemaker; running it there needs OCF
// agents of those names.
func PacemakerAgents(c *cib.CIB) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	walk(d.root, func(e *cib.Element) {
		if (e.Name == "primitive" || e.Name == "lrm_resource") && e.Attrs.Value("class") == "builtin" {
			e.Attrs.Set("class", "ocf")
			e.Attrs.Set("provider", "ringmaster")
		}
	})
	return cib.FromElement(d.root)
}

// NodeRef names a cluster node: its corosync node ID and name.
type NodeRef struct {
	ID    string
	Uname string
}

// EnsureNodes adds a <node id uname type="member"/> to the configuration
// for every node of nodes that it lacks (matched by id or uname), as
// Pacemaker's controller adds the nodes of the membership; the scheduler
// places resources only on configured nodes. It returns c itself when
// nothing was missing, and leaves the version alone (it completes a
// configuration that is being installed; that change carries the bump).
func EnsureNodes(c *cib.CIB, nodes []NodeRef) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	sec := d.section("nodes")
	added := false
	for _, n := range nodes {
		found := false
		for _, e := range sec.Children {
			if e.Name == "node" && (e.ID() == n.ID || e.Attrs.Value("uname") == n.Uname) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		sec.Children = append(sec.Children, &cib.Element{Name: "node", Attrs: cib.Attrs{
			{Name: "id", Value: n.ID}, {Name: "uname", Value: n.Uname}, {Name: "type", Value: "member"}}})
		added = true
	}
	if !added {
		return c, nil
	}
	return cib.FromElement(d.root)
}
