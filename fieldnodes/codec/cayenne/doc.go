// Package cayenne decodes Cayenne Low Power Payload (LPP), the channel/type/value format many
// LoRaWAN sensors send: the original myDevices table and the common extended types (generic
// sensor, voltage, current, frequency, percentage, altitude, concentration, power, distance,
// energy, direction, unixtime, gyrometer, colour, GPS, switch).
//
// A payload is a sequence of records: one byte channel, one byte type, then a value whose size
// and scale the type fixes (big-endian). Each value becomes a measurement named
// "<type name>_<channel>" (temperature on channel 3 is "temperature_3"; three-axis types give
// "accel_x_3", "accel_y_3", ...), in the type's own unit (Types lists them). Which Aghali metric
// a channel is, is the device profile's business, not the codec's.
//
// Times: every measurement gets the receive time, unless the payload carries a unixtime record
// (type 133): then the records after it get that time, and so do the records before the first
// one, so a payload dated anywhere is dated throughout.
//
// Refused (the whole payload): empty payloads, a record cut short, an unknown type, a unixtime
// outside 1970–9999, a payload of nothing but unixtime records.
//
// Invariants: pure (no I/O, no clock: the receive time is an argument); never panics; on success
// at least one measurement, in payload order; on failure a *codec.Error naming the byte offset.
package cayenne
