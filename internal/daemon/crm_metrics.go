package daemon

import (
	"time"

	"ringmaster/internal/metrics"
)

// metricsSnapshot is what a scrape reads of the resource manager: the
// controller's status and its CIB (immutable; pengine.Status runs on it
// later, outside the lock). Under the executive's lock (exec.Do); nil
// before Init.
func (s *crmService) metricsSnapshot(now time.Time) *metrics.CRM {
	if s.ctrl == nil {
		return nil
	}
	st := s.ctrl.Status()
	m := &metrics.CRM{Now: now, Status: st, CIB: s.ctrl.CIB()}
	if st.DC != 0 && st.Synced {
		m.DC = s.nodeName(st.DC)
	}
	return m
}
