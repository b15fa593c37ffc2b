package irrigation

// RuleBookVersion is the version of the rule book e holds (0: none), for tests.
func RuleBookVersion(e *Engine) int64 {
	if b := e.book.Load(); b != nil {
		return b.version
	}
	return 0
}
