// Package fieldnodes is everything that talks to field devices: the MQTT link (package mqttlink,
// the only importer of paho), the embedded broker and its device authentication (package broker),
// LoRaWAN network-server adapters (lorawan/chirpstack, lorawan/tts) and payload codecs (codec/…,
// one package each), device profiles (profile), the ingest pipeline that turns messages into
// committed readings, node registry and health, and delivery of the valve commands handed to it
// by package irrigation.
//
// In this package: Store owns the device tables (nodes, device_secrets, metrics, readings and its
// monthly partitions, node_latest, node_upkeep_pending, device_profiles, pending_devices,
// pending_messages, rejected_messages) with hand-written SQL, pgx kept inside the store_*.go
// files; Ingest is the pipeline (decode → batch → commit → tell the ReadingsListener of zoned
// nodes → acknowledge in publish order → write the node upkeep behind); HealthMonitor raises and resolves node
// alerts through a consumer-side Alerter; Commander publishes valve commands to MQTT controllers
// and Downlinks queues them, in the compact layout, at a LoRaWAN controller's network server
// (ChirpStack command/down, The Things Stack down/push). The ingest gives the network-server
// events of a LoRaWAN controller's DevEUI (known from a cache the LoRaWANControllerHandler fills
// every few seconds, never per message) to that handler rather than to the nodes.
// docs/mqtt.md, docs/lorawan.md and docs/lorawan-controller.md are the contracts they implement.
//
// Invariants:
//   - A message is acknowledged to the broker only after what it carried is committed (readings,
//     a pending-device record, or a rejection record): nothing accepted is lost.
//   - Readings are unique on (node, metric, time): redelivered and duplicated messages are stored
//     once; a LoRaWAN frame seen again within the dedup window (another gateway's or network
//     server's copy) adds nothing, and a frame counter reset is never taken for a copy.
//   - Buffers are bounded: when the database is slow or away the ingest stops taking messages
//     (backpressure) instead of holding more.
//   - A reading outside its metric's plausible range is stored and flagged, never dropped.
//   - No input crashes the process: a message that cannot be used is recorded in
//     rejected_messages with its topic, raw bytes and reason.
//   - A device may publish only under its own topics (enforced by the broker's auth hook).
//   - Only an argon2id hash of a device secret is stored; a failed login is never cached.
//   - A command past its expires_at is never sent, over MQTT or as a downlink.
package fieldnodes
