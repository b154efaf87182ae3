// Package controld is the pure core of ringmaster's resource manager on one
// node: the replicated CIB, the local operation dispatcher and, on the
// designated controller (DC), the scheduler loop and the transition engine.
// Like totem/srp and etcd's RawNode it has no goroutines, clocks, sockets or
// files: time is an input, and everything to do comes out of Ready.
//
// # The stream
//
// The executive (totem/exec) hands every node the same totally ordered
// stream of crm messages and configuration changes, with a sync barrier
// after each regular configuration. The controller applies every message
// identically on every node, so the CIB needs no further agreement:
//
//	input                  | every node                                    | DC only
//	-----------------------+-----------------------------------------------+------------------------------
//	ConfChange(regular)    | start sync; multicast own state if members     | abort transition; actions on
//	                       | were added                                    | nodes that left are lost
//	MsgSync                | keep (until SyncDone)                         |
//	SetQuorum              |                                               | re-plan
//	SyncDone               | merge (newest config, own states, best view of | re-plan; add missing <node>s
//	                       | the others); mark members up, others down     |
//	MsgConfig              | apply if based on the current epoch           | re-plan
//	MsgAction              | record start/promote as pending; run it if     | (own action of a dead ring:
//	                       | it is ours                                    | lost)
//	MsgOpResult            | record in the sender's history; fail count    | complete the action or re-plan
//	MsgFenceResult         | fenced node: down, history and attrs cleared  | complete the fencing; on
//	                       |                                               | failure retry after FenceRetry
//	MsgAttr / MsgCleanup   | sender's transient attribute / forget history  | re-plan
//	OpDone                 | multicast the result                          |
//	FenceDone              |                                               | multicast the result; success:
//	                       |                                               | fire what follows (no re-plan
//	                       |                                               | until own result delivered)
//	Tick                   |                                               | recheck, fence retry
//
// Status updates delivered while a sync is in progress are held and applied
// after the merge, at the same point of the stream on every node.
//
// # Versions and the merge
//
// Configuration changes bump epoch (num_updates back to 0), status changes
// bump num_updates, as in Pacemaker. Members that stayed together hold the
// same CIB (virtual synchrony), so a membership change that only removes
// members needs no exchange at all: the failover path is a local decision.
// When members were added, each member multicasts its own node state (it is
// authoritative for its operation history and transient attributes), and
// the lowest member of each transitional configuration also sends its
// configuration and its view of the nodes outside the membership. At
// SyncDone everybody takes the configuration with the highest (admin_epoch,
// epoch, num_updates), then the highest digest, then the lowest sender; and
// for a node outside the membership, the state with the highest generation
// (each node counts the changes it applied to a node's state), so a node
// fenced on one side is not resurrected by the other side's stale copy.
//
// # The DC
//
// The DC is the lowest member of a quorate partition: no election. The
// lowest member of a partition without quorum coordinates too, but only to
// apply no-quorum-policy (the scheduler runs with have-quorum=0: stop,
// freeze, ignore or suicide); Status().DC is 0 there. The DC runs
// pengine.Schedule on every change (membership, quorum, configuration, an
// unexpected result, an attribute, the recheck timer), saves the input
// (Ready.PEInputs), and executes the graph incrementally: an action starts
// when all its inputs succeeded (graph order, as graph.Executor); resource
// actions go to their node as MsgAction (safe delivery); a result that
// differs from the expected one aborts the transition, which re-plans once
// nothing runs any more. Fencing requests are Ready.Fences; the result is sent
// before anything ordered after it, so every node applies it first (see
// dcState.fenceDone).
package controld
