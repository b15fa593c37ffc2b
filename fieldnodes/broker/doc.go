// Package broker is Aghali's embedded MQTT broker (mochi-mqtt), used when no external broker is
// configured: `aghali demo`, small installations and tests. It listens on TCP, authenticates
// devices against the device registry and enforces the topic rules of docs/mqtt.md.
//
// Invariants:
//   - Every client logs in: devices with user name = their uid and password = their secret
//     (checked by the Authenticator), the server's own clients with the per-process random
//     credential from InternalCredentials. Nothing else gets in; every refusal is logged and
//     counted.
//   - A node may publish only under {prefix}/nodes/{uid}/ and subscribe only within it; a
//     controller may subscribe only to {prefix}/controllers/{uid}/cmd and publish only its
//     .../ack and .../state. A device's client id must be its uid (or empty), so no device can
//     take over another's session or the server's, and its will message must be a topic it may
//     publish to.
//   - Queues are generous (docs/mqtt.md, "Broker settings"): a message the broker still has to
//     drop is counted and logged, never dropped silently.
package broker
