// Package mqttlink is Aghali's MQTT client connection, and the only importer of paho: no paho
// type leaves it. The server's ingest and command delivery use it against the embedded broker
// and against external ones (Mosquitto, EMQX) alike, and the simulator and tests use it as a
// device.
//
// A Link keeps a persistent session (CleanSession false, keyed by its client id), so messages
// published while it is away are queued by the broker and delivered when it is back. Received
// messages are NOT acknowledged automatically: the consumer calls Message.Ack once what the
// message carried is committed; a message never acknowledged is redelivered by the broker when
// the session resumes. Subscriptions are (re)made in the on-connect handler, so they survive
// reconnects and broker restarts without persistence. It reconnects for ever; only an explicit
// refusal of the very first connection (bad credentials, client id rejected) fails Start.
//
// Invariants: a handler is called for one message at a time, in arrival order (so a handler
// that blocks holds back the connection: back-pressure); Publish at QoS ≥ 1 returns nil only
// after the broker's PUBACK.
package mqttlink
