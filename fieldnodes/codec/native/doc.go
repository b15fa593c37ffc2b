// Package native decodes Aghali's native node payload (DESIGN.md, MQTT contract), a JSON object:
//
//	{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.234,"soil_temp_c":18.2},"battery_v":3.61,"rssi":-71}
//
// ts is optional (RFC 3339; absent or null: the receive time). readings maps metric names to
// numbers. battery_v and rssi are optional device health, returned as the metrics battery_v and
// rssi_dbm (a top-level value wins over the same name inside readings). Other top-level members
// are ignored, so devices may add fields without being refused.
//
// Invariants: pure (no I/O, no clock: the receive time is an argument); never panics; on success
// returns at least one measurement, sorted by metric name, all with the same time; on failure a
// *codec.Error saying what is wrong and where.
package native
