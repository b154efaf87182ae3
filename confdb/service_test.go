package confdb

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"ringmaster/totem"
)

// TestMembersFromConfChange: runtime.members.N.* follow the regular
// configurations; a node without an address shows "unknown".
func TestMembersFromConfChange(t *testing.T) {
	s := New(Config{Addrs: map[totem.NodeID]netip.Addr{1: netip.MustParseAddr("127.0.0.1"), 2: netip.MustParseAddr("127.0.0.2")}})
	get := func(k string) string {
		v, err := s.Store().Get(k)
		if err != nil {
			return "-"
		}
		return v.String()
	}
	reg := func(members, joined, left []totem.NodeID) {
		s.ConfChange(totem.ConfChange{Kind: totem.Regular, Members: members, Joined: joined, Left: left})
	}
	reg([]totem.NodeID{1}, []totem.NodeID{1}, nil)
	assert.Equal(t, "joined", get("runtime.members.1.status"))
	assert.Equal(t, "r(0) ip(127.0.0.1) ", get("runtime.members.1.ip"))
	reg([]totem.NodeID{1, 2}, []totem.NodeID{2}, nil)
	reg([]totem.NodeID{1}, nil, []totem.NodeID{2})
	assert.Equal(t, "left", get("runtime.members.2.status"))
	s.ConfChange(totem.ConfChange{Kind: totem.Transitional, Members: []totem.NodeID{1}})
	reg([]totem.NodeID{1, 2}, []totem.NodeID{2}, nil)
	assert.Equal(t, "joined", get("runtime.members.2.status"))
	assert.Equal(t, "2", get("runtime.members.2.join_count"))
	assert.Equal(t, "1", get("runtime.members.1.join_count"))
	assert.Equal(t, "-", get("runtime.members.3.status"))
	reg([]totem.NodeID{1, 2, 3}, []totem.NodeID{3}, nil)
	assert.Equal(t, "r(0) ip(unknown) ", get("runtime.members.3.ip"))
}
