// Package object decodes the object a LoRaWAN network server made of an uplink with its own
// payload decoder: ChirpStack's "object", The Things Stack's "decoded_payload". Its shape is
// whatever that decoder wrote, so this codec only flattens it: each number becomes a
// measurement named by its path ("temperature", "soil.moisture", "probes.0.vwc"), booleans
// become 1 and 0, strings holding a finite number become that number, other strings and nulls
// are left out (decoders like to add "status":"ok"). Which Aghali metric a path is, and in what
// unit, is the device profile's business.
//
// A top-level "ts", "time" or "timestamp" holding an RFC 3339 string dates the measurements;
// otherwise they get the receive time.
//
// Refused: anything but a JSON object; nesting deeper than MaxDepth; more than MaxValues values;
// an object without a single usable value; a time that is not RFC 3339 or outside 1970–9999.
//
// Invariants: pure (no I/O, no clock: the receive time is an argument); never panics; on success
// at least one measurement, sorted by name; on failure a *codec.Error.
package object
