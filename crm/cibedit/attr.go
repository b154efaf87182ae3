package cibedit

import (
	"fmt"
	"strconv"

	"ringmaster/crm/cib"
)

// Lifetime is crm_attribute's -l: where a node attribute lives.
type Lifetime int

const (
	// Forever is a permanent node attribute: configuration <node>
	// instance_attributes (set "nodes-ID"), kept across reboots.
	Forever Lifetime = iota
	// Reboot is a transient attribute: the node's status
	// transient_attributes (set "status-ID"), erased when the node leaves.
	Reboot
)

// ParseLifetime accepts crm_attribute's spellings: forever/permanent and
// reboot/transient (Pacemaker's old "-t status" synonyms included).
func ParseLifetime(s string) (Lifetime, error) {
	switch s {
	case "forever", "permanent", "nodes":
		return Forever, nil
	case "reboot", "transient", "status":
		return Reboot, nil
	}
	return 0, fmt.Errorf("%w: lifetime %q (want reboot or forever)", ErrUsage, s)
}

// Attr selects one attribute the way crm_attribute's options do.
type Attr struct {
	// Name is the attribute (-n). For a promotion score use PromotionName.
	Name string
	// Node (-N) makes it a node attribute; empty means a cluster option
	// or a default in Section.
	Node string
	// Lifetime (-l) of a node attribute.
	Lifetime Lifetime
	// Utilization (-z) selects the node's utilization set instead of its
	// attributes (permanent only).
	Utilization bool
	// Section (-t) for attributes without a node: crm_config (the
	// default), rsc_defaults or op_defaults.
	Section string
	// SetID (-s) names the attribute set to create or update.
	SetID string
}

// PromotionName is the node attribute that holds a promotable resource's
// promotion score (crm_attribute --promotion, crm_master): master-RSC.
func PromotionName(rsc string) string { return "master-" + rsc }

// location resolves where a (kind, parent set container, default set id)
// attribute lives, creating the containers when create is set.
func (d *doc) attrPlace(a Attr, create bool) (parent *cib.Element, kind, setID string, status bool, err error) {
	if a.Name == "" {
		return nil, "", "", false, fmt.Errorf("%w: an attribute name is required", ErrUsage)
	}
	if a.Node == "" {
		kind = "meta_attributes"
		switch a.Section {
		case "", "crm_config":
			parent, kind, setID = d.section("crm_config"), "cluster_property_set", "cib-bootstrap-options"
		case "rsc_defaults":
			parent, setID = d.section("rsc_defaults"), "rsc-options"
		case "op_defaults":
			parent, setID = d.section("op_defaults"), "op-options"
		default:
			return nil, "", "", false, fmt.Errorf("%w: section %q (want crm_config, rsc_defaults or op_defaults)", ErrUsage, a.Section)
		}
	} else {
		n, ne, err := d.node(a.Node)
		if err != nil {
			return nil, "", "", false, err
		}
		switch {
		case a.Lifetime == Reboot && a.Utilization:
			return nil, "", "", false, fmt.Errorf("%w: utilization attributes are permanent", ErrUsage)
		case a.Lifetime == Reboot:
			ns := d.nodeState(n, create)
			if ns == nil {
				return nil, "", "", true, nil
			}
			ta := ns.Child("transient_attributes")
			if ta == nil && create {
				ta = &cib.Element{Name: "transient_attributes", Attrs: cib.Attrs{{Name: "id", Value: n.id}}}
				ns.Children = append(ns.Children, ta)
			}
			parent, kind, setID, status = ta, "instance_attributes", "status-"+n.id, true
		default:
			if ne == nil {
				if !create {
					return nil, "", "", false, nil
				}
				ne = &cib.Element{Name: "node", Attrs: cib.Attrs{{Name: "id", Value: n.id}, {Name: "uname", Value: n.uname}}}
				nodes := d.section("nodes")
				nodes.Children = append(nodes.Children, ne)
			}
			parent, kind, setID = ne, "instance_attributes", "nodes-"+n.id
			if a.Utilization {
				kind, setID = "utilization", "nodes-"+n.id+"-utilization"
			}
		}
	}
	if a.SetID != "" {
		setID = a.SetID
	}
	return parent, kind, setID, status, nil
}

// GetAttr returns an attribute's value (crm_attribute -G), ErrNoAttr when
// it is not set.
func GetAttr(c *cib.CIB, a Attr) (string, error) {
	d, err := open(c)
	if err != nil {
		return "", err
	}
	parent, kind, _, _, err := d.attrPlace(a, false)
	if err != nil {
		return "", err
	}
	if v, ok := getPair(parent, kind, a.Name); ok {
		return v, nil
	}
	return "", fmt.Errorf("%w: %s", ErrNoAttr, a.Name)
}

// SetAttr sets an attribute (crm_attribute -v). An existing pair of that
// name is updated in place; otherwise it is added to the set named by
// SetID or the standard set (cib-bootstrap-options, rsc-options,
// op-options, nodes-ID, status-ID). As attrd does, "value++" increments an
// integer value and "value+=N" adds N (INFINITY saturates).
func SetAttr(c *cib.CIB, a Attr, value string) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	parent, kind, setID, status, err := d.attrPlace(a, true)
	if err != nil {
		return nil, err
	}
	old, had := getPair(parent, kind, a.Name)
	value = expandValue(old, value)
	if had && old == value {
		return c, nil
	}
	d.setPair(parent, kind, setID, a.Name, value)
	if status {
		d.state = true
	} else {
		d.config = true
	}
	return d.done()
}

// DelAttr deletes an attribute (crm_attribute -D). Deleting an attribute
// that is not set succeeds without a new version, as in Pacemaker.
func DelAttr(c *cib.CIB, a Attr) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	parent, kind, _, status, err := d.attrPlace(a, false)
	if err != nil {
		return nil, err
	}
	if !delPairs(parent, kind, func(n string) bool { return n == a.Name }) {
		return c, nil
	}
	if status {
		d.state = true
	} else {
		d.config = true
	}
	return d.done()
}

// expandValue implements attrd's "name++" and "name+=N" value forms.
func expandValue(old, value string) string {
	inc, ok := 0, false
	switch {
	case len(value) > 2 && value[len(value)-2:] == "++":
		inc, ok = 1, true
	default:
		for i := 0; i+1 < len(value); i++ {
			if value[i] == '+' && value[i+1] == '=' {
				n, err := strconv.Atoi(value[i+2:])
				if err == nil {
					inc, ok = n, true
				}
				break
			}
		}
	}
	if !ok {
		return value
	}
	const inf = 1000000
	if old == "INFINITY" || old == "+INFINITY" {
		return "INFINITY"
	}
	v, _ := strconv.Atoi(old)
	v += inc
	if v >= inf {
		return "INFINITY"
	}
	return strconv.Itoa(v)
}

// Standby puts a node in standby (on) or back online: the permanent node
// attribute standby=on/off, as crm_standby and `crm node standby|online`
// set it. A standby node runs no resources.
func Standby(c *cib.CIB, node string, on bool) (*cib.CIB, error) {
	v := "off"
	if on {
		v = "on"
	}
	return SetAttr(c, Attr{Name: "standby", Node: node, Lifetime: Forever}, v)
}
