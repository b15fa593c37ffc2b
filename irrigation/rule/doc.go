// Package rule is the pure part of threshold rules: validating a condition, comparing an
// aggregate against its threshold, the cooldown, and the words that record why a rule fired.
// It does no I/O and reads no clock; package irrigation gathers the aggregate and acts on the
// result.
//
// Invariants:
//   - A rule never fires on no data: an aggregate over zero readings is not a value.
//   - A rule never fires inside its cooldown.
//   - Every result carries a reason a person can read, e.g.
//     "mean soil_vwc 0.152 < 0.18 over 1h (3 readings)".
package rule
