// Package mqtttest runs a real Mosquitto broker for interoperability tests and benchmarks: on a
// free port (or a given one), with a generated configuration (anonymous access or a password
// file, unlimited queues and in-flight window as docs/mqtt.md asks, persistence on request),
// started by the test and stopped at its cleanup; Restart brings it back on the same port.
//
// Invariant: a test that asks for Mosquitto either gets a running broker or fails saying how to
// install it; it never skips.
package mqtttest
