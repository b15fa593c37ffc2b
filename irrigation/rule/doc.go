// Package rule is the pure part of irrigation rules: the condition language (expressions over
// facts, compiled with expr-lang/expr into a sandboxed program), the facts it knows, the
// enabled windows, and the state machine that turns evaluations into acts (hold duration,
// cooldown, hysteresis). It does no I/O and reads no clock; package irrigation gathers the facts
// a program asks for and acts on the result. docs/rules.md is the language reference.
//
// Invariants:
//   - A condition is checked completely when it is saved: syntax, names, types, the constant
//     arguments of reading functions (metric, window, scope); every error names its line and
//     column.
//   - Evaluation performs no I/O and its cost is bounded: no loops, ranges, closures or member
//     access; at most MaxNodes syntax nodes and MaxSeries reading functions; a memory budget.
//   - A rule never acts on missing data: when a fact the condition needs has no data (outside
//     default()), the outcome is unknown and nothing fires.
//   - A rule never acts inside its cooldown, before its condition has held for its hold
//     duration, outside its windows, or while disarmed by its reset condition.
//   - Every outcome can be explained in words with the values the condition saw, e.g.
//     `mean("soil_vwc", "1h") < 0.18 holds: mean("soil_vwc", "1h") = 0.152 (3 readings)`.
package rule
