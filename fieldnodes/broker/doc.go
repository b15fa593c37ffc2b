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
//   - A gateway (Config.Gateways: a network server, a concentrator) may publish any node's uplink
//     and the network servers' topics, and read their downlink topics; its client id is its user
//     name or starts with it and "-".
//   - With a Handoff (the ingest of the same process), node uplinks and network-server events at
//     QoS 0 and 1 go to it instead of to subscribers, and the publisher's PUBACK is written only
//     once the Handoff acknowledges the message, that is once it is committed: the broker never
//     holds a message it has acknowledged, so a killed process loses none of them.
//   - Queues are generous (docs/mqtt.md, "Broker settings"): a message the broker still has to
//     drop is counted and logged, never dropped silently.
package broker
