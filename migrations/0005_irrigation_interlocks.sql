-- Irrigation safety (issue 4): the hydraulic, energy and pump interlocks decided when a run is
-- admitted, runs waiting in order for their water source, command sequencing, flow metering,
-- emergency stops and manual overrides, and the LoRaWAN side of controllers.

-- LoRaWAN controllers: the device class (A: a downlink waits for the device's next uplink;
-- C: listens continuously) and the FPort commands go down on and acks come back on.
ALTER TABLE controllers
    ADD COLUMN lorawan_class text CHECK (lorawan_class IN ('A', 'C')),
    ADD COLUMN lorawan_fport integer CHECK (lorawan_fport BETWEEN 1 AND 223);

-- The power a solar or hydro source has for pumping, and what pumping costs: together they
-- cap the flow the source may deliver at once (power_budget_kw / specific_energy_kwh_m3 m3/h).
ALTER TABLE water_sources
    ADD COLUMN power_budget_kw double precision CHECK (power_budget_kw > 0),
    ADD COLUMN specific_energy_kwh_m3 double precision CHECK (specific_energy_kwh_m3 > 0);

-- A valve either waters a zone or is an actuator of a water source: its pump or its master
-- valve, switched on before the source's first zone opens and off after its last one closes.
-- hold_until is the earliest an actuator that is on may switch itself off (its open command's
-- duration_s running out); NULL: off. hold_command is the open that switched it on, which the
-- zone opens behind it wait for.
ALTER TABLE valves
    ADD COLUMN role text NOT NULL DEFAULT 'zone' CHECK (role IN ('zone', 'pump', 'master')),
    ADD COLUMN water_source_id bigint REFERENCES water_sources ON DELETE SET NULL,
    ADD COLUMN hold_until timestamptz,
    ADD COLUMN hold_command uuid,
    ADD CONSTRAINT valves_actuator_no_zone CHECK (role = 'zone' OR zone_id IS NULL);
CREATE INDEX valves_water_source ON valves (water_source_id) WHERE water_source_id IS NOT NULL;

-- Runs: the source they draw on and the flow they were admitted with (fixed at creation, so
-- the capacity check never depends on later edits); their place in the source's queue
-- (priority, then created_at, id); why a planned run is still waiting; water applied.
ALTER TABLE irrigation_runs
    ADD COLUMN water_source_id bigint REFERENCES water_sources ON DELETE SET NULL,
    ADD COLUMN flow_lpm double precision,
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN wait_reason text NOT NULL DEFAULT '',
    ADD COLUMN volume_l double precision,
    ADD COLUMN override_id bigint;
CREATE INDEX irrigation_runs_source_live ON irrigation_runs (water_source_id, priority DESC, created_at, id)
    WHERE state IN ('planned', 'starting', 'open', 'closing');

-- A command that must wait for another to be acknowledged first (a zone's open behind its
-- pump's); if that one fails, this one is never sent.
ALTER TABLE commands ADD COLUMN after_id uuid REFERENCES commands ON DELETE SET NULL;
CREATE INDEX commands_after ON commands (after_id) WHERE after_id IS NOT NULL;

-- Emergency stop of a farm: while one is in force (released_at NULL) nothing on the farm is
-- watered. At most one in force per farm.
CREATE TABLE irrigation_stops (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id          bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    stopped_at       timestamptz NOT NULL,
    stopped_by       bigint REFERENCES users ON DELETE SET NULL,
    stopped_by_name  text NOT NULL,
    reason           text NOT NULL,
    runs_stopped     integer NOT NULL DEFAULT 0,
    released_at      timestamptz,
    released_by      bigint REFERENCES users ON DELETE SET NULL,
    released_by_name text
);
CREATE UNIQUE INDEX irrigation_stops_in_force ON irrigation_stops (farm_id) WHERE released_at IS NULL;
CREATE INDEX irrigation_stops_farm ON irrigation_stops (farm_id, id DESC);

-- Manual override of a zone by a named person for a while: 'open' waters it now, ahead of the
-- queue and regardless of its rest time and the source's energy window (never beyond capacity,
-- max runtime or an emergency stop); 'hold' keeps it closed, stopping what runs and refusing
-- every run until it ends.
CREATE TABLE irrigation_overrides (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id           bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    zone_id           bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    mode              text NOT NULL CHECK (mode IN ('open', 'hold')),
    by_user           bigint REFERENCES users ON DELETE SET NULL,
    by_name           text NOT NULL,
    reason            text NOT NULL,
    created_at        timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    cancelled_at      timestamptz,
    cancelled_by_name text,
    run_id            bigint REFERENCES irrigation_runs ON DELETE SET NULL,
    CHECK (ends_at > created_at)
);
CREATE INDEX irrigation_overrides_zone ON irrigation_overrides (zone_id, ends_at) WHERE cancelled_at IS NULL;
CREATE INDEX irrigation_overrides_farm ON irrigation_overrides (farm_id, id DESC);

-- Flow meters beyond a controller's own (which meters the controller's valves): a node whose
-- flow_lpm readings meter a water source or a zone.
CREATE TABLE flow_meters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id         bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    node_id         bigint NOT NULL UNIQUE REFERENCES nodes ON DELETE CASCADE,
    water_source_id bigint REFERENCES water_sources ON DELETE CASCADE,
    zone_id         bigint REFERENCES zones ON DELETE CASCADE,
    name            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    CHECK (num_nonnulls(water_source_id, zone_id) = 1)
);
CREATE INDEX flow_meters_farm ON flow_meters (farm_id);
