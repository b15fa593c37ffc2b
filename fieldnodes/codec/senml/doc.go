// Package senml decodes SenML packs (RFC 8428, JSON representation) into measurements.
//
// Supported: base fields bn, bt, bv, bs, bver (≤ 10; bu is accepted and ignored) carried forward
// to the records that follow until changed; record fields n, v, vb (true = 1, false = 0), s, t
// (u and ut are accepted and ignored: Aghali's metric names carry their unit). A record's value
// is bv+v, else bs+s, else vb. Times are bt+t seconds: zero means "now" (the receive time),
// values below 2^28 are relative to the receive time, larger ones are seconds since the epoch.
//
// Names: the resolved name bn+n must follow RFC 8428 (first character a letter or digit, then
// letters, digits and - : . / _). When it contains ':' or '/', the part after the last of them is
// the metric and the part before it names the device (Measurement.Device), so a base name such
// as "urn:dev:aghali:node-17:" or "node-17/" may carry the node id.
//
// Refused (the whole pack, never a part of it, so a device learns of its mistake): anything that
// is not a non-empty JSON array of objects; string (vs) and data (vd) values, which cannot be
// stored as numbers; fields with the wrong type; must-understand fields (names ending in "_");
// a record without a value; bver above 10; times outside 1970–9999.
//
// Invariants: pure (no I/O, no clock: the receive time is an argument); never panics; on success
// at least one measurement, in pack order; on failure a *codec.Error naming the record.
package senml
