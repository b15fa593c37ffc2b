package irrigation

import (
	"context"
	"time"

	"github.com/aghali/aghali/irrigation/rule"
)

// RuleBookVersion is the version of the rule book e holds (0: none), for tests.
func RuleBookVersion(e *Engine) int64 {
	if b := e.book.Load(); b != nil {
		return b.version
	}
	return 0
}

// SaveRuleState writes a rule's memory of a zone as an evaluation that began at at and read old
// would (trusting stamps up to ten seconds ahead), for tests.
func SaveRuleState(s *Store, ruleID, zoneID int64, old, st rule.State, at time.Time) error {
	return s.saveRuleStateIf(context.Background(), old, ruleID, zoneID, st, at, at.Add(10*time.Second), "test")
}
