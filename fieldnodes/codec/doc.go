// Package codec is what every uplink payload codec shares: the Measurement a decoder returns and
// the Error it fails with. Each payload format has its own subpackage (native, senml, cayenne,
// object: the network servers' decoded objects), each pure: bytes in,
// measurements out, no I/O, no clock of its own (the receive time is passed in), never a panic;
// each has byte fixtures with golden files and a `go test -fuzz` target. codectest is what their
// tests share.
//
// Invariants of every decoder's output when it returns no error: at least one measurement; every
// Metric non-empty; every Value finite; every Time set (the receive time when the payload has
// none). Checking metric names against the catalogue's rules is the caller's job, not the codec's.
package codec
