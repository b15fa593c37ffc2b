// Package valvecmd is the compact binary form of the valve-controller contract for LoRaWAN
// controllers: commands (open, close, close_all) as downlinks, and acks and state reports as
// uplinks, on one FPort. docs/lorawan-controller.md is the layout's reference; this package is
// its only implementation in Aghali, pure (bytes in, values out, no I/O, no clock, never a
// panic) and shared by the server's downlink path and simulated controllers.
//
// Invariants: an encoded command is never more than 10 bytes (it fits every LoRaWAN region's
// smallest payload, US915 DR0's 11); its expires_at is never later than the server's (rounded
// down to the second) and its duration never longer (rounded down to the minute beyond 65,535
// s); a decoded command or uplink has passed every check the encoder makes.
package valvecmd
