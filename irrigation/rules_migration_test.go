package irrigation_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/irrigation/rule"
	"github.com/aghali/aghali/migrations"
	"github.com/aghali/aghali/migrations/pgtest"
)

// Threshold rules stored before migration 0006 keep working: each becomes the expression that
// says the same, which compiles, and keeps its action, duration and cooldown.
func TestThresholdRulesBecomeExpressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP EXTENSION IF EXISTS postgis CASCADE`); err != nil {
		t.Fatal(err)
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	apply := func(before bool) {
		for _, m := range all {
			if (m.Version < 6) == before {
				if _, err := pool.Exec(ctx, m.SQL); err != nil {
					t.Fatalf("%s: %v", m.Name, err)
				}
			}
		}
	}
	apply(true)
	if _, err := pool.Exec(ctx, `
		INSERT INTO organisations (name) VALUES ('o');
		INSERT INTO farms (org_id, name) SELECT id, 'f' FROM organisations;
		INSERT INTO zones (farm_id, name, geom) SELECT id, 'z',
			ST_GeomFromText('POLYGON((46.63 39.09,46.6312 39.09,46.6312 39.0909,46.63 39.0909,46.63 39.09))', 4326) FROM farms;
		INSERT INTO rules (zone_id, name, metric, aggregate, op, threshold, window_s, duration_s, cooldown_s, enabled)
		SELECT z.id, x.name, x.metric, x.agg, x.op, x.threshold, x.window_s, x.duration_s, x.cooldown_s, x.enabled
		FROM zones z, (VALUES
			('Dry', 'soil_vwc', 'mean', '<', 0.18::float8, 3600, 1200, 3600, true),
			('Hot', 'air_temp_c', 'max', '>=', 35, 5400, 600, 0, true),
			('Tank', 'water_level_m', 'last', '>', 1.25, 900, 300, 60, false),
			('Salty', 'soil_ec_ds_m', 'min', '<=', 0.00042, 172800, 60, 0, true),
			('Odd window', 'soil_vwc', 'mean', '<', -2.5, 45, 60, 0, true)
		) AS x(name, metric, agg, op, threshold, window_s, duration_s, cooldown_s, enabled)`); err != nil {
		t.Fatal(err)
	}
	apply(false)

	want := map[string]string{
		"Dry":        `mean("soil_vwc", "1h") < 0.18`,
		"Hot":        `max("air_temp_c", "90m") >= 35`,
		"Tank":       `last("water_level_m", "15m") > 1.25`,
		"Salty":      `min("soil_ec_ds_m", "2d") <= 0.00042`,
		"Odd window": `mean("soil_vwc", "45s") < -2.5`,
	}
	rows, err := pool.Query(ctx, `SELECT r.name, r.condition, r.action, r.duration_s, r.cooldown_s, r.farm_id = z.farm_id, r.enabled
		FROM rules r JOIN zones z ON z.id = r.zone_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, cond, action string
		var duration, cooldown int
		var sameFarm, enabled bool
		if err := rows.Scan(&name, &cond, &action, &duration, &cooldown, &sameFarm, &enabled); err != nil {
			t.Fatal(err)
		}
		n++
		if cond != want[name] || action != "irrigate" || !sameFarm || duration == 0 {
			t.Errorf("%s: %q (%s, %d s, farm %v), want %q", name, cond, action, duration, sameFarm, want[name])
		}
		if name == "Tank" && (enabled || cooldown != 60) {
			t.Errorf("Tank lost its enabled flag or cooldown")
		}
		if _, err := rule.Compile(cond); err != nil {
			t.Errorf("%s: %q does not compile: %v", name, cond, err)
		}
	}
	if n != len(want) {
		t.Fatalf("%d rules after the migration, want %d", n, len(want))
	}
}
