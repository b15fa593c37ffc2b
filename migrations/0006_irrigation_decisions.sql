-- Irrigation decisions (issue 5): rules written as expressions, schedules with restrictions,
-- skip conditions, seasonal adjustment, cycle-and-soak and a water-balance mode, reference
-- evapotranspiration per farm and day, the daily root-zone water balance per zone, and the log
-- of every decision with its reason.

-- ---------------------------------------------------------------- zones: agronomy

-- The crop's planting (or, for perennials, bud-break / green-up) date starts its Kc curve;
-- theta_fc and theta_wp, when measured for the zone, replace the soil texture's Table 19 values.
ALTER TABLE zones
    ADD COLUMN planting_date date,
    ADD COLUMN theta_fc double precision CHECK (theta_fc > 0 AND theta_fc < 1),
    ADD COLUMN theta_wp double precision CHECK (theta_wp >= 0 AND theta_wp < 1),
    ADD CONSTRAINT zones_theta_order CHECK (theta_fc IS NULL OR theta_wp IS NULL OR theta_wp < theta_fc);

-- ---------------------------------------------------------------- rules as expressions

-- A rule belongs to a farm; zone_id NULL means every zone of the farm (evaluated per zone).
ALTER TABLE rules ADD COLUMN farm_id bigint REFERENCES farms ON DELETE CASCADE;
UPDATE rules r SET farm_id = z.farm_id FROM zones z WHERE z.id = r.zone_id;
ALTER TABLE rules ALTER COLUMN farm_id SET NOT NULL;
ALTER TABLE rules ALTER COLUMN zone_id DROP NOT NULL;
CREATE INDEX rules_farm ON rules (farm_id) WHERE zone_id IS NULL;

-- condition: an expression over facts (docs/rules.md). Existing threshold rules are translated:
-- "mean of soil_vwc over 3600 s < 0.18" becomes mean("soil_vwc", "1h") < 0.18, which the
-- engine evaluates exactly as before (same aggregate, window and comparison; no data: no fire).
ALTER TABLE rules
    ADD COLUMN condition text,
    -- hysteresis: after firing, the rule is disarmed until reset_condition holds ('' = none:
    -- it may fire again whenever condition holds and its cooldown has passed).
    ADD COLUMN reset_condition text NOT NULL DEFAULT '',
    -- condition must hold continuously this long before the rule acts.
    ADD COLUMN hold_s integer NOT NULL DEFAULT 0 CHECK (hold_s >= 0),
    ADD COLUMN action text NOT NULL DEFAULT 'irrigate' CHECK (action IN ('irrigate', 'skip', 'alert')),
    -- irrigate for duration_s, or for depth_mm of water reaching the roots (converted to a
    -- runtime through the zone's application rate and efficiency).
    ADD COLUMN depth_mm double precision CHECK (depth_mm > 0 AND depth_mm <= 500),
    ADD COLUMN severity text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    ADD COLUMN message text NOT NULL DEFAULT '',
    -- higher first; a skip rule that holds vetoes irrigation by rules of lower priority,
    -- schedules and the water balance.
    ADD COLUMN priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    -- [{"from":"05:00","to":"09:00","days":["mon","thu"]}] in the farm's time zone; empty: always.
    ADD COLUMN windows jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN updated_at timestamptz;

UPDATE rules SET condition = format('%s("%s", "%s") %s %s', aggregate, metric,
        CASE WHEN window_s % 86400 = 0 THEN (window_s / 86400) || 'd'
             WHEN window_s % 3600 = 0 THEN (window_s / 3600) || 'h'
             WHEN window_s % 60 = 0 THEN (window_s / 60) || 'm'
             ELSE window_s || 's' END,
        op, threshold::text),
    updated_at = created_at;
ALTER TABLE rules ALTER COLUMN condition SET NOT NULL;
ALTER TABLE rules ALTER COLUMN updated_at SET NOT NULL;
ALTER TABLE rules ALTER COLUMN duration_s DROP NOT NULL;
ALTER TABLE rules DROP COLUMN metric, DROP COLUMN aggregate, DROP COLUMN op, DROP COLUMN threshold, DROP COLUMN window_s;
ALTER TABLE rules ADD CONSTRAINT rules_irrigate_amount
    CHECK (action <> 'irrigate' OR ((duration_s IS NULL) <> (depth_mm IS NULL)));

-- Per rule and zone: what the engine remembers between evaluations. Locked (after the rule is
-- read, before the valve) whenever a rule acts, so two engines never act twice on one reason.
CREATE TABLE rule_states (
    rule_id        bigint NOT NULL REFERENCES rules ON DELETE CASCADE,
    zone_id        bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    -- condition has held continuously since; NULL: it does not hold now.
    holding_since  timestamptz,
    -- hysteresis: false from a firing until reset_condition holds.
    armed          boolean NOT NULL DEFAULT true,
    -- skip and alert rules: in effect now.
    active         boolean NOT NULL DEFAULT false,
    last_fired_at  timestamptz,
    evaluated_at   timestamptz,
    reason         text NOT NULL DEFAULT '',
    PRIMARY KEY (rule_id, zone_id)
);
CREATE INDEX rule_states_zone ON rule_states (zone_id);

-- ---------------------------------------------------------------- schedules

ALTER TABLE schedules
    -- fixed: water duration_s (× seasonal_pct); water_balance: water what the zone's root zone
    -- lacks when its depletion has reached RAW, nothing otherwise.
    ADD COLUMN mode text NOT NULL DEFAULT 'fixed' CHECK (mode IN ('fixed', 'water_balance')),
    -- days of the week it may run, bit 0 = Sunday … bit 6 = Saturday (127: every day).
    ADD COLUMN weekdays smallint NOT NULL DEFAULT 127 CHECK (weekdays BETWEEN 1 AND 127),
    -- odd or even days of the month only (local calendar), as many water authorities require.
    ADD COLUMN day_parity text NOT NULL DEFAULT 'any' CHECK (day_parity IN ('any', 'odd', 'even')),
    -- skip an occurrence when: rain over the last 24 h ≥ skip_rain_mm; forecast rain over the
    -- next 24 h ≥ skip_forecast_rain_mm; the zone's mean soil_vwc over the last hour ≥
    -- skip_soil_vwc; the farm's lowest air temperature over the last hour ≤ skip_frost_c; the
    -- farm's mean wind over the last 30 min ≥ skip_wind_ms. NULL: not checked.
    ADD COLUMN skip_rain_mm double precision CHECK (skip_rain_mm >= 0),
    ADD COLUMN skip_forecast_rain_mm double precision CHECK (skip_forecast_rain_mm >= 0),
    ADD COLUMN skip_soil_vwc double precision CHECK (skip_soil_vwc > 0 AND skip_soil_vwc < 1),
    ADD COLUMN skip_frost_c double precision CHECK (skip_frost_c BETWEEN -30 AND 15),
    ADD COLUMN skip_wind_ms double precision CHECK (skip_wind_ms > 0),
    -- fixed mode: each run lasts duration_s × seasonal_pct / 100.
    ADD COLUMN seasonal_pct integer NOT NULL DEFAULT 100 CHECK (seasonal_pct BETWEEN 0 AND 300),
    -- cycle-and-soak: the water goes on in cycles of at most cycle_s with soak_s between them.
    ADD COLUMN cycle_s integer CHECK (cycle_s >= 60),
    ADD COLUMN soak_s integer CHECK (soak_s >= 0),
    -- an occurrence still watering in cycles: seconds left, when the next cycle is due, and why.
    ADD COLUMN pending_s integer CHECK (pending_s > 0),
    ADD COLUMN pending_at timestamptz,
    ADD COLUMN pending_reason text,
    ADD COLUMN pending_origin text CHECK (pending_origin IN ('schedule', 'water_balance')),
    ADD COLUMN updated_at timestamptz;
ALTER TABLE schedules ALTER COLUMN duration_s DROP NOT NULL;
ALTER TABLE schedules ADD CONSTRAINT schedules_fixed_duration CHECK (mode <> 'fixed' OR duration_s IS NOT NULL);
ALTER TABLE schedules ADD CONSTRAINT schedules_cycle_soak CHECK ((cycle_s IS NULL) = (soak_s IS NULL));
CREATE INDEX schedules_pending ON schedules (pending_at) WHERE pending_at IS NOT NULL;

-- ---------------------------------------------------------------- weather and ET0

-- What ET0 needs to know about a farm beyond its location: elevation (pressure, clear-sky
-- radiation) and the Hargreaves radiation coefficient kRs (0.16 interior, 0.19 coastal).
CREATE TABLE farm_weather_settings (
    farm_id     bigint PRIMARY KEY REFERENCES farms ON DELETE CASCADE,
    elevation_m double precision NOT NULL DEFAULT 0 CHECK (elevation_m BETWEEN -500 AND 9000),
    krs         double precision NOT NULL DEFAULT 0.16 CHECK (krs BETWEEN 0.1 AND 0.3),
    updated_at  timestamptz NOT NULL
);

-- Reference evapotranspiration per farm and local calendar day, from the farm's weather
-- stations; recomputed while the day is under way (final = false), kept once it is over.
CREATE TABLE farm_et0_daily (
    farm_id        bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    day            date NOT NULL,
    et0_mm         double precision,   -- NULL: not enough data
    method         text NOT NULL CHECK (method IN ('pm', 'hargreaves', 'none')),
    et0_hourly_mm  double precision,   -- sum of 24 hourly eq. 53 values, when every hour has data
    tmax_c         double precision,
    tmin_c         double precision,
    rh_max_pct     double precision,
    rh_min_pct     double precision,
    rh_mean_pct    double precision,
    dew_point_c    double precision,
    wind_2m_ms     double precision,
    solar_mj_m2    double precision,
    sunshine_h     double precision,
    rain_mm        double precision,
    hours          integer NOT NULL DEFAULT 0,  -- hours of the day with temperature data
    sources        text NOT NULL DEFAULT '',    -- how humidity, wind and radiation were obtained
    terms          jsonb NOT NULL DEFAULT '{}', -- every intermediate term of the equation
    final          boolean NOT NULL DEFAULT false,
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (farm_id, day)
);

-- Rain forecasts pushed by a forecast source (a script polling a weather service, ...).
CREATE TABLE weather_forecasts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id     bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz NOT NULL CHECK (valid_to > valid_from),
    rain_mm     double precision NOT NULL CHECK (rain_mm >= 0),
    source      text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL
);
CREATE INDEX weather_forecasts_farm ON weather_forecasts (farm_id, valid_from);

-- ---------------------------------------------------------------- root-zone water balance

-- One day of a zone's FAO-56 water balance (eq. 85), depths in mm.
CREATE TABLE zone_water_balance (
    zone_id             bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    day                 date NOT NULL,
    et0_mm              double precision NOT NULL,
    kc                  double precision NOT NULL,
    etc_mm              double precision NOT NULL,
    ks                  double precision NOT NULL,
    etc_adj_mm          double precision NOT NULL,
    rain_mm             double precision NOT NULL,
    effective_rain_mm   double precision NOT NULL,
    irrigation_mm       double precision NOT NULL, -- gross depth applied
    net_irrigation_mm   double precision NOT NULL,
    deep_percolation_mm double precision NOT NULL,
    depletion_start_mm  double precision NOT NULL,
    depletion_mm        double precision NOT NULL,
    taw_mm              double precision NOT NULL,
    raw_mm              double precision NOT NULL,
    p                   double precision NOT NULL,
    probe_vwc           double precision,          -- the soil moisture that corrected the day
    probe_depletion_mm  double precision,
    model_depletion_mm  double precision,          -- the depletion before the correction
    notes               text NOT NULL DEFAULT '',
    final               boolean NOT NULL DEFAULT false,
    computed_at         timestamptz NOT NULL,
    PRIMARY KEY (zone_id, day)
);

-- ---------------------------------------------------------------- decisions

-- Every automatic decision with its reason: a rule that acted or was vetoed, a schedule
-- occurrence fired or skipped, a water-balance check.
CREATE TABLE irrigation_decisions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    farm_id    bigint NOT NULL REFERENCES farms ON DELETE CASCADE,
    zone_id    bigint REFERENCES zones ON DELETE CASCADE,
    at         timestamptz NOT NULL,
    origin     text NOT NULL CHECK (origin IN ('rule', 'schedule', 'water_balance')),
    origin_id  bigint,
    action     text NOT NULL CHECK (action IN ('irrigate', 'skip', 'alert', 'resolve', 'none')),
    reason     text NOT NULL,
    run_id     bigint REFERENCES irrigation_runs ON DELETE SET NULL,
    duration_s integer,
    depth_mm   double precision,
    volume_l   double precision,
    facts      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX irrigation_decisions_farm ON irrigation_decisions (farm_id, at DESC);
CREATE INDEX irrigation_decisions_zone ON irrigation_decisions (zone_id, at DESC);
