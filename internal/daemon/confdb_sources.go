package daemon

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ringmaster/confdb"
	"ringmaster/confdb/store"
	cdbwire "ringmaster/confdb/wire"
	"ringmaster/totem"
	"ringmaster/votequorum"
	vqwire "ringmaster/votequorum/wire"
)

// newQuorum builds the votequorum service from the running configuration
// (QuorumConfig); option combinations votequorum refuses surface when the
// executive starts it.
func (d *Daemon) newQuorum() (*votequorum.Service, error) {
	cfg, err := QuorumConfig(d.Config(), d.node)
	if err != nil {
		return nil, err
	}
	return votequorum.New(cfg), nil
}

// newConfdb builds confdb and ties it to the rest of the node:
//
//   - stats.srp.* read the ring's counters, stats.ipcs.* every connected
//     client's counters per service, kept by the IPC server;
//   - runtime.votequorum.* follow every quorum change;
//   - writes of quorum.expected_votes, nodelist.node.N.quorum_votes and
//     quorum.cancel_wait_for_all go to votequorum (through the ring, so
//     every node applies them), as corosync's votequorum tracks those keys.
func (d *Daemon) newConfdb(q *votequorum.Service) *confdb.Service {
	c := confdb.New(ConfdbConfig(d.Config(), d.node, confdb.Sources{
		Ring: func() totem.Counters { return d.ring.Status().Counters },
		Clients: func() []confdb.ClientStat {
			srv := d.ipcServer()
			if srv == nil {
				return nil
			}
			var out []confdb.ClientStat
			for _, st := range srv.Stats() {
				out = append(out, confdb.ClientStat{
					Service: st.Service, ConnID: st.ConnID, PID: st.PID, UID: st.UID,
					Requests: st.Requests, Responses: st.Replies, Dispatched: st.Events, Errors: st.Errors,
				})
			}
			return out
		},
	}))
	cmap := c.Store()
	q.OnChange(func(st vqwire.Status) { publishQuorum(cmap, st) })
	c.OnWrite("quorum.cancel_wait_for_all", func(_ string, v cdbwire.Value) (bool, error) {
		if n, ok := v.Integer(); ok && n == 0 {
			return false, nil
		}
		return false, quorumErr(q.CancelWaitForAll())
	})
	c.OnWrite("quorum.expected_votes", func(_ string, v cdbwire.Value) (bool, error) {
		n, ok := v.Integer()
		if !ok || n < 1 || n > 1<<31 {
			return false, fmt.Errorf("%w: quorum.expected_votes must be a positive integer", cdbwire.ErrBadValue)
		}
		return true, quorumErr(q.SetExpected(uint32(n)))
	})
	c.OnWritePrefix("nodelist.node.", func(key string, v cdbwire.Value) (bool, error) {
		pos, ok := strings.CutSuffix(strings.TrimPrefix(key, "nodelist.node."), ".quorum_votes")
		if !ok {
			return true, nil
		}
		idv, err := cmap.Get("nodelist.node." + pos + ".nodeid")
		if err != nil {
			return true, nil // a node that is not in the list: just a key
		}
		id, _ := idv.Uint()
		n, _ := v.Integer()
		return true, quorumErr(q.SetVotes(totem.NodeID(id), uint32(n)))
	})
	return c
}

// quorumErr turns votequorum's refusals into confdb's error classes, so a
// `ringctl cmap set` refused by votequorum says why and exits like any
// invalid write.
func quorumErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, votequorum.ErrNoSuchNode):
		return fmt.Errorf("%w: %v", cdbwire.ErrNotFound, err)
	case errors.Is(err, votequorum.ErrInvalid):
		return fmt.Errorf("%w: %v", cdbwire.ErrBadValue, err)
	}
	return err
}

// publishQuorum writes runtime.votequorum.* (corosync's names where it has
// them).
func publishQuorum(s *store.Store, st vqwire.Status) {
	set := func(k string, v cdbwire.Value) { _ = s.Set("runtime.votequorum."+k, v) }
	atb := map[string]uint32{"": 0, "lowest": 1, "highest": 2, "list": 3}[st.TieBreaker]
	set("this_node_id", cdbwire.U32(st.NodeID))
	set("quorate", cdbwire.Bool(st.Quorate))
	set("expected_votes", cdbwire.U32(st.ExpectedVotes))
	set("total_votes", cdbwire.U32(st.TotalVotes))
	set("quorum", cdbwire.U32(st.Quorum))
	set("wait_for_all_status", cdbwire.Bool(st.WaitForAllStatus))
	set("two_node", cdbwire.Bool(st.HasFlag(vqwire.FlagTwoNode)))
	set("atb_type", cdbwire.U32(atb))
	set("lowest_node_id", cdbwire.U32(st.LowestNode))
	set("highest_node_id", cdbwire.U32(st.HighestNode))
	set("ev_barrier", cdbwire.U32(st.EVBarrier))
	if st.EVTrackingBarrier > 0 {
		set("ev_tracking_barrier", cdbwire.U32(st.EVTrackingBarrier))
	}
	var members []string
	for _, m := range st.Members {
		members = append(members, strconv.Itoa(int(m.NodeID)))
	}
	set("members", cdbwire.String(strings.Join(members, " ")))
}
