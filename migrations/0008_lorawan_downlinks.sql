-- LoRaWAN controllers' downlinks (issue 4): where each controller was last heard, so that its
-- commands go down through that network server (after a restart too), and what the network
-- server said of each downlink.

-- The network server ('chirpstack' or 'tts') of the controller's latest event, and the values
-- its topic gave the uplink template's placeholders (ChirpStack: application_id, dev_eui; The
-- Things Stack: application_id, tenant_id, device_id): the downlink topic is filled from them.
-- NULL until the controller is first heard.
ALTER TABLE controllers
    ADD COLUMN lorawan_network text CHECK (lorawan_network IN ('chirpstack', 'tts')),
    ADD COLUMN lorawan_route jsonb CHECK (jsonb_typeof(lorawan_route) = 'object');

-- The network server's last word on a command's downlink: 'acked' (the device received it),
-- 'nacked' (it did not acknowledge it), 'failed: <why>'. NULL: none (an MQTT command, or no word
-- yet).
ALTER TABLE commands ADD COLUMN downlink_status text;
