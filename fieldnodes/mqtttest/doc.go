// Package mqtttest runs a real Mosquitto broker for interoperability tests: on a free port (or
// a given one, to restart a broker where a client expects it), with a generated configuration
// (anonymous access or a password file, unlimited queues and in-flight window, no persistence),
// started by the test and killed at its cleanup.
//
// Invariant: a test that asks for Mosquitto either gets a running broker or fails saying how to
// install it; it never skips.
package mqtttest
