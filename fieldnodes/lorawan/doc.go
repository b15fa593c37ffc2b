// Package lorawan is what the LoRaWAN network-server adapters share: the Event an adapter makes
// of a network server's MQTT message (an uplink with its link figures, a device status, a join,
// a downlink's fate), and topic templates, which say where a network server publishes and
// which part of a topic is the event.
//
// Each network server has its own adapter package (chirpstack, tts): bytes in, an Event out,
// pure, never a panic. Matching an event to a node (by DevEUI), decoding its FRMPayload or
// decoded object through the node's device profile, and storing it is package fieldnodes' job.
//
// Invariants of an adapter's Event: DevEUI is "" or 16 lower-case hexadecimal digits; Time is
// zero or within 1970–9999; link figures are finite; Best is the gateway with the highest SNR
// (then RSSI) and Gateways counts every gateway that heard the uplink; DownlinkID is the id Aghali
// gave the downlink (ChirpStack's queue item id, TTS's correlation id after CorrelationPrefix),
// "" for a downlink Aghali did not name.
//
// DownTemplate is the other direction: the topic a network server takes a device's downlinks on,
// filled from the placeholders of that device's uplink topic.
package lorawan
