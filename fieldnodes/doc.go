// Package fieldnodes is everything that talks to field devices: the MQTT link (package mqttlink,
// the only importer of paho), the embedded broker and its device authentication (package broker),
// network-server adapters and payload codecs (one package each), the ingest pipeline that turns
// messages into committed readings, node registry and health, and delivery of the valve commands
// handed to it by package irrigation.
//
// Invariants:
//   - A message is acknowledged to the broker only after what it carried is committed (readings,
//     a pending-device record, or a rejection record): nothing accepted is lost.
//   - Readings are unique on (node, metric, time): redelivered and duplicated messages are stored once.
//   - No input crashes the process: a message that cannot be used is recorded in
//     rejected_messages with its topic, raw bytes and reason.
//   - A device may publish only under its own topics (enforced by the broker's auth hook).
package fieldnodes
