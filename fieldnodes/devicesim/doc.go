// Package devicesim runs simulated field devices against an MQTT broker, each on its own
// connection with its own credentials, speaking exactly the device contract of docs/mqtt.md:
//
//   - soil nodes report soil_vwc, soil_temp_c and soil_ec_ds_m of their zone; the zone's soil
//     dries through the day (evapotranspiration following the sun) and wets while one of its
//     valves is open; weather nodes report air temperature, humidity, wind, radiation, pressure;
//   - valve controllers obey commands (open with duration_s, close, close_all), close a valve by
//     themselves when its duration_s runs out, ignore a command past its expires_at and never
//     execute a repeated id twice (they ack it again), and report their valves' state (retained)
//     and flow.
//
// A controller can be told to misbehave (SetFault): drop acks, go offline, stick open, leak.
// It is used by `aghali demo`, `aghali simulate` and end-to-end tests; it is not a model of
// agronomy (package irrigation/agronomy is).
package devicesim
