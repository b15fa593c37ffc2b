// Package schedule is the pure part of irrigation schedules: parsing a 5-field cron expression,
// computing its occurrences in a farm's time zone, and deciding what to do about occurrences that
// came due while nobody was looking. It does no I/O and reads no clock; callers pass the time.
//
// Invariants:
//   - Occurrences are computed in the farm's time zone, so "0 6 * * *" waters at 06:00 local time
//     on both sides of a daylight-saving change.
//   - A wall-clock time that happens twice (the hour repeated when clocks go back) yields one
//     occurrence, the first; a wall-clock time that does not exist (the hour skipped when clocks go
//     forward) yields one occurrence at the instant the clocks jump, so a daily schedule neither
//     waters twice nor skips a day.
//   - Restrict limits occurrences to weekdays and odd or even days of the month, by the local
//     calendar: an occurrence on another day is no occurrence (never fired, never "missed").
//   - Decide fires at most one occurrence per call, the latest one, and only while it is no older
//     than the caller's limit; everything older is reported as missed, never fired late.
package schedule
