package votequorum

import (
	"maps"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/votequorum/calc"
)

// SetOptions applies new options and node names while ringd runs (a
// cluster-wide `ringctl config reload` calls it on every member at the
// reload's commit point, under the executive's lock): see
// calc.Calc.SetOptions for what changes. Trackers get the new status. On
// error nothing changes.
func (s *Service) SetOptions(opt calc.Options, names map[totem.NodeID]string) error {
	before := len(s.calc.Warnings())
	if err := s.calc.SetOptions(opt); err != nil {
		return err
	}
	s.cfg.Options = opt
	s.cfg.Names = maps.Clone(names)
	for _, w := range s.calc.Warnings()[before:] {
		s.log.Warn(w)
	}
	st := s.calc.Status()
	s.log.Info("quorum options reloaded", zap.Uint32("expected_votes", st.ExpectedVotes), zap.Uint32("total_votes", st.TotalVotes),
		zap.Uint32("quorum", st.Quorum), zap.Bool("quorate", st.Quorate))
	s.changed(true)
	return nil
}

// CheckOptions reports whether opt would be accepted by SetOptions (the
// reload's validation step, before any member commits).
func CheckOptions(opt calc.Options) error {
	_, _, err := opt.Normalize()
	return err
}
