package lrmd

import "fmt"

// RC is an OCF exit code. LSB and builtin agents are mapped onto the same
// codes so the resource manager above lrmd reasons about one vocabulary.
// The numbers are part of the OCF standard and must never change.
type RC int

// OCF exit codes (OCF resource agent API 1.1, section "Return codes").
const (
	RCOK               RC = 0   // OCF_SUCCESS: the action succeeded (monitor: running)
	RCErrGeneric       RC = 1   // OCF_ERR_GENERIC: soft error, may be retried here
	RCErrArgs          RC = 2   // OCF_ERR_ARGS: the parameters are wrong for this node
	RCErrUnimplemented RC = 3   // OCF_ERR_UNIMPLEMENTED: the agent does not offer the action
	RCErrPerm          RC = 4   // OCF_ERR_PERM: insufficient privileges
	RCErrInstalled     RC = 5   // OCF_ERR_INSTALLED: the agent or a tool it needs is missing here
	RCErrConfigured    RC = 6   // OCF_ERR_CONFIGURED: the configuration is wrong everywhere
	RCNotRunning       RC = 7   // OCF_NOT_RUNNING: cleanly stopped (monitor/probe answer)
	RCRunningPromoted  RC = 8   // OCF_RUNNING_PROMOTED (formerly RUNNING_MASTER)
	RCFailedPromoted   RC = 9   // OCF_FAILED_PROMOTED (formerly FAILED_MASTER)
	RCDegraded         RC = 190 // OCF_DEGRADED (OCF 1.1): running but not healthy
	RCDegradedPromoted RC = 191 // OCF_DEGRADED_PROMOTED (OCF 1.1)
	rcLastStandardCode RC = 9
)

// String gives the same short names crm_mon and crm_resource print.
func (rc RC) String() string {
	switch rc {
	case RCOK:
		return "ok"
	case RCErrGeneric:
		return "error"
	case RCErrArgs:
		return "invalid parameter"
	case RCErrUnimplemented:
		return "unimplemented feature"
	case RCErrPerm:
		return "insufficient privileges"
	case RCErrInstalled:
		return "not installed"
	case RCErrConfigured:
		return "not configured"
	case RCNotRunning:
		return "not running"
	case RCRunningPromoted:
		return "promoted"
	case RCFailedPromoted:
		return "promoted (failed)"
	case RCDegraded:
		return "degraded"
	case RCDegradedPromoted:
		return "degraded (promoted)"
	}
	return fmt.Sprintf("unknown exit code %d", int(rc))
}

// Known reports whether rc is one of the codes the OCF standard defines.
// Anything else an agent exits with is treated as RCErrGeneric.
func (rc RC) Known() bool {
	return (rc >= RCOK && rc <= rcLastStandardCode) || rc == RCDegraded || rc == RCDegradedPromoted
}

// Hard reports whether the code says retrying on this node is pointless
// (pacemaker's "hard" errors: the agent, a tool or a permission is missing
// here, or the arguments do not fit this node).
func (rc RC) Hard() bool {
	return rc == RCErrArgs || rc == RCErrUnimplemented || rc == RCErrPerm || rc == RCErrInstalled
}

// Fatal reports whether the code says the configuration is wrong on every
// node, so the resource must not be started anywhere until it is fixed.
func (rc RC) Fatal() bool { return rc == RCErrConfigured }

// Status says how an operation ended, independently of the agent's RC:
// an agent that was killed on timeout has no exit code of its own.
type Status int

// Operation statuses. Numbers are only appended.
const (
	// StatusDone: the agent ran to completion; RC is its answer.
	StatusDone Status = iota
	// StatusTimedOut: the operation ran past its timeout and its whole
	// process group was killed; RC is RCErrGeneric.
	StatusTimedOut
	// StatusCancelled: the caller cancelled the operation (or it was a
	// queued recurring operation that was cancelled); RC is RCErrGeneric.
	StatusCancelled
	// StatusNotInstalled: the agent does not exist on this node; RC is
	// RCErrInstalled.
	StatusNotInstalled
	// StatusInvalid: the operation was rejected before the agent ran
	// (bad agent name, missing required parameter, ...); RC says why
	// (usually RCErrConfigured).
	StatusInvalid
	// StatusExecError: the agent could not be executed (fork/exec
	// failure, killed by a signal); RC is RCErrGeneric.
	StatusExecError
)

func (s Status) String() string {
	switch s {
	case StatusDone:
		return "done"
	case StatusTimedOut:
		return "timed out"
	case StatusCancelled:
		return "cancelled"
	case StatusNotInstalled:
		return "not installed"
	case StatusInvalid:
		return "invalid"
	case StatusExecError:
		return "error"
	}
	return fmt.Sprintf("status(%d)", int(s))
}
