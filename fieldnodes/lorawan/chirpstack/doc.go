// Package chirpstack reads the events ChirpStack v4's MQTT integration publishes (JSON encoding,
// the protobuf JSON mapping: camelCase names, zero values left out, bytes in base64) on
// application/{application_id}/device/{dev_eui}/event/{event}: up, status, join, ack and txack.
// Other events (log, location, integration) are ErrIgnored: well-formed, but nothing Aghali keeps.
//
// up: FRMPayload ("data"), the decoded "object" when the device profile has a codec, fCnt,
// fPort, the time ChirpStack stamped it with ("time"), and the link: every gateway in rxInfo
// counts, the best (highest SNR, then RSSI) gives RSSI and SNR, txInfo gives frequency and the
// LoRa spreading factor. status: batteryLevel (percent; left out when ChirpStack says it is
// unavailable or the device is on external power) and margin. ack: acknowledged and fCntDown.
//
// Invariants: pure; never panics; on failure a *codec.Error (Codec "chirpstack").
package chirpstack
