package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNoLocalNode is returned when no node (or more than one) of the node
// list can be this host.
var ErrNoLocalNode = errors.New("cannot tell which node this is")

// LocalNode finds this host's entry in the node list. override ("--node")
// is a node ID or name and wins; otherwise the node whose ring0_addr is one
// of local's addresses is chosen. Several matches (e.g. a demo with all
// nodes on one host) or none are errors that say to use --node.
func (c *Config) LocalNode(override string, local []netip.Addr) (*Node, error) {
	if override != "" {
		if id, err := strconv.Atoi(override); err == nil {
			if n := c.NodeByID(id); n != nil {
				return n, nil
			}
		}
		for i := range c.Nodes {
			if c.Nodes[i].Name == override {
				return &c.Nodes[i], nil
			}
		}
		return nil, fmt.Errorf("%w: --node %q matches no nodeid or name in %s", ErrNoLocalNode, override, c.Path)
	}
	var found []*Node
	for i := range c.Nodes {
		ap, err := c.NodeAddr(&c.Nodes[i])
		if err != nil {
			continue
		}
		for _, a := range local {
			if a.Unmap() == ap.Addr() {
				found = append(found, &c.Nodes[i])
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%w: no ring0_addr in %s is an address of this host; use --node ID|NAME", ErrNoLocalNode, c.Path)
	}
	names := make([]string, len(found))
	for i, n := range found {
		names[i] = fmt.Sprintf("%d (%s)", n.NodeID, n.Name)
	}
	return nil, fmt.Errorf("%w: nodes %s all have addresses of this host; use --node ID|NAME", ErrNoLocalNode, strings.Join(names, ", "))
}

// HostAddrs lists the IP addresses of this host's interfaces.
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}
