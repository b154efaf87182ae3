package srp

import (
	"slices"

	"ringmaster/totem"
)

// Node sets are sorted slices without duplicates: small (a ring rarely has
// more than a few dozen members), cache friendly, and directly comparable
// with the sets carried in joins and commit tokens.

func setContains(s []totem.NodeID, x totem.NodeID) bool {
	_, ok := slices.BinarySearch(s, x)
	return ok
}

// setAdd returns s with x inserted (s may be reused).
func setAdd(s []totem.NodeID, x totem.NodeID) []totem.NodeID {
	i, ok := slices.BinarySearch(s, x)
	if ok {
		return s
	}
	return slices.Insert(s, i, x)
}

func setRemove(s []totem.NodeID, x totem.NodeID) []totem.NodeID {
	i, ok := slices.BinarySearch(s, x)
	if !ok {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// setMinus returns a − b as a new slice.
func setMinus(a, b []totem.NodeID) []totem.NodeID {
	out := make([]totem.NodeID, 0, len(a))
	for _, x := range a {
		if !setContains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func setSubset(a, b []totem.NodeID) bool {
	for _, x := range a {
		if !setContains(b, x) {
			return false
		}
	}
	return true
}

func setEqual(a, b []totem.NodeID) bool { return slices.Equal(a, b) }

// nextMember returns the member after me in ring order (node-ID order,
// wrapping around).
func nextMember(members []totem.NodeID, me totem.NodeID) totem.NodeID {
	i, _ := slices.BinarySearch(members, me)
	i++
	if i >= len(members) {
		i = 0
	}
	return members[i]
}
