-- Aghali foundation schema: tenancy, people, the farm's geometry, devices, readings, irrigation
-- runs and their command outbox, alerts and the audit log. Geometries are WGS84 (SRID 4326).

CREATE EXTENSION IF NOT EXISTS postgis;

-- ---------------------------------------------------------------- tenancy and people

CREATE TABLE organisations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    name          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    locale        text NOT NULL DEFAULT 'en' CHECK (locale IN ('az', 'ru', 'en')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (email);

-- A user's role in an organisation. admin and agronomist see every farm of the organisation;
-- farmer and viewer see only the farms granted to them in farm_access.
CREATE TABLE memberships (
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    org_id     bigint NOT NULL REFERENCES organisations ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'agronomist', 'farmer', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, org_id)
);

-- Browser sessions: the cookie carries a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ip           text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Bearer tokens for scripts; only the SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Everything a person (or the system acting for one) changes.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    org_id    bigint REFERENCES organisations ON DELETE CASCADE,
    user_id   bigint REFERENCES users ON DELETE SET NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    entity    text NOT NULL,
    entity_id text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at DESC);

-- ---------------------------------------------------------------- the farm's geometry

CREATE TABLE farms (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES organisations ON DELETE CASCADE,
    name       text NOT NULL CHECK (name <> ''),
    timezone   text NOT NULL DEFAULT 'Asia/Baku',
    location   geometry(Point, 4326),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE farm_access (
    user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    farm_id bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    PRIMARY KEY (user_id, farm_id)
);

CREATE TABLE fields (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id    bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    name       text NOT NULL CHECK (name <> ''),
    crop       text NOT NULL DEFAULT '',
    geom       geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fields_farm ON fields (farm_id);
CREATE INDEX fields_geom ON fields USING gist (geom);

CREATE TABLE water_sources (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id        bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    name           text NOT NULL CHECK (name <> ''),
    kind           text NOT NULL CHECK (kind IN ('pump', 'well', 'canal', 'reservoir')),
    capacity_m3h   double precision CHECK (capacity_m3h > 0),
    energy         text NOT NULL DEFAULT 'grid' CHECK (energy IN ('grid', 'solar', 'hydro', 'none')),
    -- [{"from":"08:00","to":"17:00"}] in the farm's time zone; empty: always.
    energy_windows jsonb NOT NULL DEFAULT '[]',
    geom           geometry(Point, 4326),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX water_sources_farm ON water_sources (farm_id);

CREATE TABLE zones (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id             bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    field_id            bigint REFERENCES fields ON DELETE SET NULL,
    water_source_id     bigint REFERENCES water_sources ON DELETE SET NULL,
    name                text NOT NULL CHECK (name <> ''),
    geom                geometry(Polygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    method              text NOT NULL DEFAULT 'drip' CHECK (method IN ('drip', 'sprinkler', 'furrow', 'other')),
    crop                text NOT NULL DEFAULT '',
    soil                text NOT NULL DEFAULT '',
    root_depth_m        double precision CHECK (root_depth_m > 0),
    application_rate_mm_h double precision CHECK (application_rate_mm_h > 0),
    efficiency          double precision CHECK (efficiency > 0 AND efficiency <= 1),
    -- The longest a valve of this zone may stay open, enforced by the controller via duration_s.
    max_runtime_s       integer NOT NULL DEFAULT 3600 CHECK (max_runtime_s > 0),
    min_off_s           integer NOT NULL DEFAULT 0 CHECK (min_off_s >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zones_farm ON zones (farm_id);
CREATE INDEX zones_geom ON zones USING gist (geom);

-- ---------------------------------------------------------------- field devices

-- MQTT credentials of native devices (nodes and controllers share one id namespace, so the
-- broker knows from the user name alone which topics a client may use).
CREATE TABLE device_secrets (
    uid         text PRIMARY KEY CHECK (uid ~ '^[A-Za-z0-9._-]{1,64}$'),
    kind        text NOT NULL CHECK (kind IN ('node', 'controller')),
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metrics (
    id    smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    unit  text NOT NULL DEFAULT '',
    -- false for names a device sent that are not in the contract: kept and shown as unknown.
    known boolean NOT NULL DEFAULT false
);
INSERT INTO metrics (name, unit, known) VALUES
    ('soil_vwc', 'm3/m3', true), ('soil_temp_c', '°C', true), ('soil_ec_ds_m', 'dS/m', true),
    ('air_temp_c', '°C', true), ('air_rh_pct', '%', true), ('dew_point_c', '°C', true),
    ('wind_speed_ms', 'm/s', true), ('wind_dir_deg', '°', true), ('solar_rad_wm2', 'W/m2', true),
    ('rain_mm', 'mm', true), ('pressure_hpa', 'hPa', true), ('leaf_wetness', '', true),
    ('flow_lpm', 'L/min', true), ('volume_l', 'L', true), ('water_level_m', 'm', true),
    ('battery_v', 'V', true), ('battery_pct', '%', true), ('rssi_dbm', 'dBm', true),
    ('snr_db', 'dB', true);

CREATE TABLE nodes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid                 text NOT NULL UNIQUE CHECK (uid ~ '^[A-Za-z0-9._-]{1,64}$'),
    farm_id             bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    zone_id             bigint REFERENCES zones ON DELETE SET NULL,
    name                text NOT NULL DEFAULT '',
    profile             text NOT NULL DEFAULT 'native',
    dev_eui             text UNIQUE CHECK (dev_eui ~ '^[0-9a-f]{16}$'),
    geom                geometry(Point, 4326),
    depth_m             double precision,
    height_m            double precision,
    expected_interval_s integer NOT NULL DEFAULT 900 CHECK (expected_interval_s > 0),
    last_seen_at        timestamptz,
    battery_v           double precision,
    battery_pct         double precision,
    rssi_dbm            double precision,
    snr_db              double precision,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nodes_farm ON nodes (farm_id);
CREATE INDEX nodes_zone ON nodes (zone_id);

-- Readings: append-mostly, one row per (node, metric, time), partitioned by month.
-- flags bit 0: outside the metric's plausible range (kept, but flagged).
CREATE TABLE readings (
    node_id   bigint NOT NULL,
    metric_id smallint NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL,
    flags     smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, metric_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- The latest value of each metric of each node, for maps and rules.
CREATE TABLE node_latest (
    node_id   bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
    metric_id smallint NOT NULL REFERENCES metrics,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (node_id, metric_id)
);

-- Devices that published but are not registered: kept until someone claims them.
CREATE TABLE pending_devices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,
    uid           text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    message_count bigint NOT NULL DEFAULT 0,
    UNIQUE (source, uid)
);
CREATE TABLE pending_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pending_id  bigint NOT NULL REFERENCES pending_devices ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX pending_messages_device ON pending_messages (pending_id, id);

-- Every message that was refused, with why.
CREATE TABLE rejected_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX rejected_messages_at ON rejected_messages (received_at DESC);

-- ---------------------------------------------------------------- controllers and valves

CREATE TABLE controllers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid          text NOT NULL UNIQUE CHECK (uid ~ '^[A-Za-z0-9._-]{1,64}$'),
    farm_id      bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    transport    text NOT NULL DEFAULT 'mqtt' CHECK (transport IN ('mqtt', 'lorawan')),
    dev_eui      text UNIQUE CHECK (dev_eui ~ '^[0-9a-f]{16}$'),
    geom         geometry(Point, 4326),
    last_seen_at timestamptz,
    flow_lpm     double precision,
    volume_l     double precision,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX controllers_farm ON controllers (farm_id);

CREATE TABLE valves (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    controller_id    bigint NOT NULL REFERENCES controllers ON DELETE CASCADE,
    channel          integer NOT NULL CHECK (channel BETWEEN 1 AND 255),
    zone_id          bigint REFERENCES zones ON DELETE SET NULL,
    name             text NOT NULL DEFAULT '',
    geom             geometry(Point, 4326),
    nominal_flow_lpm double precision CHECK (nominal_flow_lpm > 0),
    -- What the controller last reported; the run says what should be.
    state            text NOT NULL DEFAULT 'unknown' CHECK (state IN ('open', 'closed', 'unknown')),
    state_at         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (controller_id, channel)
);
CREATE INDEX valves_zone ON valves (zone_id);

-- ---------------------------------------------------------------- irrigation decisions

-- Threshold rule: when the aggregate of a metric over the zone's nodes (within window_s) compares
-- true against threshold, water the zone for duration_s; then wait cooldown_s.
CREATE TABLE rules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id       bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    name          text NOT NULL CHECK (name <> ''),
    metric        text NOT NULL,
    aggregate     text NOT NULL DEFAULT 'mean' CHECK (aggregate IN ('mean', 'min', 'max', 'last')),
    op            text NOT NULL CHECK (op IN ('<', '<=', '>', '>=')),
    threshold     double precision NOT NULL,
    window_s      integer NOT NULL DEFAULT 3600 CHECK (window_s > 0),
    duration_s    integer NOT NULL CHECK (duration_s > 0),
    cooldown_s    integer NOT NULL DEFAULT 3600 CHECK (cooldown_s >= 0),
    enabled       boolean NOT NULL DEFAULT true,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rules_zone ON rules (zone_id);

-- Cron schedule (robfig/cron syntax, evaluated in the farm's time zone).
CREATE TABLE schedules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id       bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    name          text NOT NULL CHECK (name <> ''),
    cron          text NOT NULL,
    duration_s    integer NOT NULL CHECK (duration_s > 0),
    enabled       boolean NOT NULL DEFAULT true,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_zone ON schedules (zone_id);

-- A run waters one zone through one valve: planned → starting → open → closing → done, or
-- aborted / failed. Persisted before any command is sent.
CREATE TABLE irrigation_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id      bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    valve_id     bigint NOT NULL REFERENCES valves ON DELETE CASCADE,
    origin       text NOT NULL CHECK (origin IN ('user', 'rule', 'schedule', 'water_balance')),
    origin_id    bigint,
    requested_by bigint REFERENCES users ON DELETE SET NULL,
    reason       text NOT NULL,
    state        text NOT NULL DEFAULT 'planned'
                 CHECK (state IN ('planned', 'starting', 'open', 'closing', 'done', 'aborted', 'failed')),
    duration_s   integer NOT NULL CHECK (duration_s > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    ends_at      timestamptz,
    ended_at     timestamptz,
    end_reason   text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX irrigation_runs_zone ON irrigation_runs (zone_id, created_at DESC);
-- At most one live run per valve: nothing is opened twice.
CREATE UNIQUE INDEX irrigation_runs_live_valve ON irrigation_runs (valve_id)
    WHERE state IN ('planned', 'starting', 'open', 'closing');

CREATE TABLE run_events (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES irrigation_runs ON DELETE CASCADE,
    at     timestamptz NOT NULL DEFAULT now(),
    state  text NOT NULL,
    note   text NOT NULL DEFAULT ''
);
CREATE INDEX run_events_run ON run_events (run_id, id);

-- The transactional outbox of controller commands.
CREATE TABLE commands (
    id              uuid PRIMARY KEY,
    controller_id   bigint NOT NULL REFERENCES controllers ON DELETE CASCADE,
    run_id          bigint REFERENCES irrigation_runs ON DELETE SET NULL,
    action          text NOT NULL CHECK (action IN ('open', 'close', 'close_all')),
    valve           integer,
    duration_s      integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'acked', 'rejected', 'expired')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    acked_at        timestamptz,
    reason          text NOT NULL DEFAULT '',
    CHECK (action <> 'open' OR (valve IS NOT NULL AND duration_s > 0))
);
CREATE INDEX commands_due ON commands (next_attempt_at) WHERE state IN ('pending', 'sent');
CREATE INDEX commands_run ON commands (run_id);

-- ---------------------------------------------------------------- alerts

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id         bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject         text NOT NULL DEFAULT '',
    message         text NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by bigint REFERENCES users ON DELETE SET NULL
);
-- One open alert per (farm, kind, subject): raising it again while open does nothing.
CREATE UNIQUE INDEX alerts_open ON alerts (farm_id, kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_farm_opened ON alerts (farm_id, opened_at DESC);
