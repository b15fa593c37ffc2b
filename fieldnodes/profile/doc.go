// Package profile is device profiles: how a node's payload becomes Aghali readings. A Profile
// names the decoder of the node's payloads (native JSON or SenML, Cayenne LPP, or the network
// server's decoded object), maps what the decoder calls each value ("temperature_3",
// "soil.moisture") to an Aghali metric, calibrates it (linear or polynomial: raw probe counts
// to m3/m3), converts its unit to the metric's (°F to °C, % to m3/m3, µS/cm to dS/m, ...), and
// flags a value outside the metric's plausible range. It also carries what is true of the
// device type as a whole: its reporting interval, the battery level that counts as low, a
// sensor's depth or height.
//
// The built-in profiles (Builtins) cover common agricultural devices; others are defined as
// JSON (the same shape as Profile) and kept by package fieldnodes.
//
// Invariants: pure (no I/O); Apply never drops a value silently: a value is mapped, kept under
// its own name, or dropped because the profile says so; a value out of range is kept and
// flagged (FlagOutOfRange), never dropped; conversion and calibration never produce NaN or ±Inf
// (such a result is an error the caller records).
package profile
