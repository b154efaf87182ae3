package pengine

import (
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// failcount is pe_get_failcount: the sum of the resource's fail-count node
// attributes on n, and the latest last-failure time. With effective, counts
// whose failures have all expired (failure-timeout) are ignored.
func (s *scheduler) failcount(n *node, r *resource, effective bool, xmlOp *cib.LRMOp) (count int, last int64) {
	// An anonymous clone instance counts the failures of every instance
	// on the node: its attributes name the clone's child with no instance
	// number, or (recorded while the clone was still unique, or before
	// Pacemaker 1.1.8) with any instance number.
	name, anyInstance := r.id, false
	if isAnonInstance(r) {
		name, anyInstance = cloneBaseID(r.id), true
	}
	for k, v := range n.attrs {
		if s.isFailAttr(k, "fail-count-", name, anyInstance) {
			count = AddScores(count, ParseScore(v))
		} else if s.isFailAttr(k, "last-failure-", name, anyInstance) {
			if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > last {
				last = t
			}
		}
	}
	if count > 0 && r.failureTimeout > 0 && s.blockFailure(r, xmlOp) {
		r.failureTimeout = 0
	}
	if effective && count > 0 && last > 0 && r.failureTimeout != 0 {
		if s.now > last+int64(r.failureTimeout) {
			count = 0
		}
	}
	return count, last
}

// isFailAttr matches Pacemaker's fail-count attribute pattern
// ^PREFIX-RSC#.+_[0-9]+$ (or ^PREFIX-RSC$ for CIBs older than feature set
// 3.0.13, which kept one count per resource) without compiling a regular
// expression per lookup.
func (s *scheduler) isFailAttr(name, prefix, rsc string, anyInstance bool) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, rsc); !ok {
		return false
	}
	if anyInstance && strings.HasPrefix(rest, ":") {
		// an optional ":N" instance number
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 1 {
			rest = rest[i:]
		}
	}
	if s.legacyFailcounts {
		return rest == ""
	}
	rest, ok = strings.CutPrefix(rest, "#")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 1 || i == len(rest)-1 {
		return false
	}
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// blockFailure reports whether the failure is for an op configured with
// on-fail=block (whose failures never expire).
func (s *scheduler) blockFailure(r *resource, xmlOp *cib.LRMOp) bool {
	for _, op := range r.ops {
		if lower(op.Attrs.Value("on-fail")) != "block" {
			continue
		}
		if xmlOp == nil {
			return true
		}
		iv := int(parseInterval(op.Interval))
		if iv != xmlOp.IntervalMS() || !strings.EqualFold(op.Name, xmlOp.Task()) {
			continue
		}
		if xmlOp.ID() == r.id+"_last_failure_0" {
			return true
		}
		if xmlOp.ID() == opKey(r.id, op.Name, iv) && xmlOp.RC() != xmlOp.TargetRC() {
			return true
		}
	}
	return false
}

// checkOperationExpiry is check_operation_expiry: whether a history entry
// is older than the failure timeout, and whether to clear a fail count.
func (s *scheduler) checkOperationExpiry(r *resource, n *node, rc int, op *cib.LRMOp) bool {
	isLastFailure := strings.HasSuffix(op.ID(), "_last_failure_0")
	expired := false
	unexpired := 0
	lastRun := op.LastRCChange()
	if r.failureTimeout > 0 && lastRun >= 0 {
		if s.now >= lastRun+int64(r.failureTimeout) {
			expired = true
		}
		unexpired, _ = s.failcount(n, r, true, op)
	}
	clearReason := ""
	if expired {
		if c, _ := s.failcount(n, r, false, op); c != 0 {
			if unexpired == 0 {
				clearReason = "it expired"
			} else {
				expired = false
			}
		}
	}
	if !expired && isLastFailure && s.shouldClearForParamChange(op, r, n) {
		clearReason = "resource parameters have changed"
	}
	if clearReason != "" {
		s.clearFailcount(r, n, clearReason)
	}
	if expired && op.IntervalMS() == 0 && op.Task() == taskMonitor {
		switch rc {
		case ocfOK, ocfNotRunning, ocfRunningPromoted, ocfDegraded, ocfDegradedPromoted:
			expired = false
		}
	}
	return expired
}

func (s *scheduler) shouldClearForParamChange(op *cib.LRMOp, r *resource, n *node) bool {
	task := op.Task()
	if task != taskStart && task != taskMonitor {
		return false
	}
	switch s.digestCompare(r, op, n).rc {
	case digestUnknown, digestMatch:
		return false
	}
	return true
}
