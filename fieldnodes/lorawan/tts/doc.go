// Package tts reads the messages The Things Stack v3 (The Things Network, The Things Industries)
// publishes on its MQTT server, v3/{application_id}@{tenant_id}/devices/{device_id}/{event}
// (JSON, snake_case, zero values left out, bytes in base64): up, join, down/ack, down/nack and
// down/failed. Other events (down/queued, down/sent, service/data, location/solved, ...) are
// ErrIgnored.
//
// up: frm_payload, decoded_payload (when the application or device has a payload formatter),
// f_cnt, f_port, the link (every rx_metadata entry counts; the best, highest SNR then RSSI,
// gives RSSI and SNR), settings (frequency, LoRa spreading factor) and, when the network server
// knows it, last_battery_percentage. The time is the message's received_at (when the
// Application Server got it), as the same uplink redelivered keeps it.
//
// The DevEUI is end_device_ids.dev_eui; a device registered without one has "" and is matched
// by nothing (it stays pending under its device_id).
//
// Invariants: pure; never panics; on failure a *codec.Error (Codec "tts").
package tts
