-- Field nodes: LoRaWAN network-server integrations, device profiles, node health, and what the
-- faster ingest needs (fieldnodes; docs/lorawan.md, docs/mqtt.md).

-- Custom device profiles; the built-in ones live in code (fieldnodes/profile). definition is the
-- profile's JSON form (fieldnodes/profile.Profile).
CREATE TABLE device_profiles (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the network server last said about a LoRaWAN node (best gateway's RSSI and SNR are the
-- readings rssi_dbm and snr_db, kept in rssi_dbm/snr_db here too), and which health alerts the
-- health monitor holds open for it.
ALTER TABLE nodes
    ADD COLUMN link_at              timestamptz, -- the uplink the link figures below are from
    ADD COLUMN gateways             smallint,
    ADD COLUMN spreading_factor     smallint,
    ADD COLUMN frequency_hz         bigint,
    ADD COLUMN f_cnt                bigint,
    ADD COLUMN f_cnt_resets         integer NOT NULL DEFAULT 0,
    ADD COLUMN link_margin_db       double precision,
    ADD COLUMN last_join_at         timestamptz,
    ADD COLUMN last_downlink_at     timestamptz,
    ADD COLUMN last_downlink_status text NOT NULL DEFAULT '',
    ADD COLUMN silent_alert_at      timestamptz,
    ADD COLUMN battery_alert_at     timestamptz;

-- The ingest updates a node's row and its latest values many times a second under load; room
-- on each page lets those updates stay HOT (no index entries written).
ALTER TABLE nodes SET (fillfactor = 70);
ALTER TABLE node_latest SET (fillfactor = 50);

-- Committed readings whose node upkeep (node_latest, nodes.last_seen_at and health columns) the
-- ingest has not written yet: it writes that behind, coalesced, and deletes the row in the same
-- transaction. Rows left by a crash are repaired at the next start from the readings themselves
-- (those of node_ids at or after min_ts).
CREATE TABLE node_upkeep_pending (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_ids bigint[] NOT NULL,
    min_ts   timestamptz NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);

-- Pending devices heard through a network server carry its name for them; each kept payload
-- says which event it was (up, status, ...).
ALTER TABLE pending_devices ADD COLUMN label text NOT NULL DEFAULT '';
ALTER TABLE pending_messages ADD COLUMN event text NOT NULL DEFAULT 'up';

-- Rejected messages are listed by reason.
CREATE INDEX rejected_messages_reason_at ON rejected_messages (reason, received_at DESC);
