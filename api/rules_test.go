package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
)

// probe registers a soil probe in zone and stores soil_vwc readings, one a minute ending now.
func (e *env) probe(zoneID int64, values ...float64) int64 {
	e.t.Helper()
	ctx := context.Background()
	n, err := e.nodes.CreateNode(ctx, fieldnodes.Node{UID: fmt.Sprintf("probe-%d-%d", zoneID, len(values)), FarmID: e.farmA.ID, ZoneID: &zoneID})
	if err != nil {
		e.t.Fatal(err)
	}
	var rs []fieldnodes.Reading
	now := e.clock.Now()
	for i, v := range values {
		rs = append(rs, fieldnodes.Reading{NodeID: n.ID, Metric: "soil_vwc", TS: now.Add(-time.Duration(len(values)-1-i) * time.Minute), Value: v})
	}
	if _, err := e.nodes.InsertReadings(ctx, rs); err != nil {
		e.t.Fatal(err)
	}
	return n.ID
}

func TestRuleExpressions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	r := e.newRig(e.farmA.ID, "Orchard", map[string]any{"application_rate_mm_h": 4, "efficiency": 0.9})
	rules := fmt.Sprintf("/api/v1/zones/%d/rules", r.zone.ID)

	var created ruleJSON
	agro.do("POST", rules, map[string]any{"name": "Dry and no rain", "condition": `mean("soil_vwc", "1h") < 0.18 && hour >= 5`,
		"reset_condition": `mean("soil_vwc", "1h") > 0.25`, "hold_s": 600, "depth_mm": 12, "priority": 5,
		"windows": []map[string]any{{"from": "04:00", "to": "10:00", "days": []string{"Monday", "tue"}}}}).
		want(http.StatusCreated).decode(&created)
	if created.Action != "irrigate" || created.DepthMM == nil || *created.DepthMM != 12 || created.DurationS != nil ||
		created.HoldS != 600 || len(created.Windows) != 1 || strings.Join(created.Windows[0].Days, ",") != "mon,tue" ||
		created.FarmID != e.farmA.ID || !created.Enabled || created.Severity != "warning" {
		t.Fatalf("created %+v", created)
	}

	// A condition that does not compile: 422 naming line and column.
	p := agro.do("POST", rules, map[string]any{"name": "Broken", "condition": "mean(\"soil_vwc\", \"1h\") < 0.18 &&\n  rain_24 < 2",
		"duration_s": 600}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "condition" || p.Errors[0].Line != 2 || p.Errors[0].Column != 3 ||
		!strings.Contains(p.Errors[0].Problem, `unknown name "rain_24"`) || !strings.Contains(p.Detail, "line 2, column 3") {
		t.Fatalf("broken condition: %+v", p)
	}
	p = agro.do("POST", rules, map[string]any{"name": "Both", "condition": "hour > 1", "metric": "soil_vwc", "op": "<",
		"threshold": 0.1, "duration_s": 60}).problem(http.StatusUnprocessableEntity)
	if p.Errors[0].Field != "condition" {
		t.Errorf("condition and threshold: %+v", p)
	}
	agro.do("POST", rules, map[string]any{"name": "Typo", "condition": "hour > 1", "duration_s": 60, "colour": "red"}).
		problem(http.StatusBadRequest)

	// PATCH: a duration replaces the depth.
	agro.do("PATCH", fmt.Sprintf("/api/v1/rules/%d", created.ID), map[string]any{"duration_s": 900}).want(http.StatusOK).decode(&created)
	if created.DurationS == nil || *created.DurationS != 900 || created.DepthMM != nil {
		t.Fatalf("after PATCH %+v", created)
	}

	// A farm-wide alert rule, listed with the farm's rules.
	var farmWide ruleJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/rules", e.farmA.ID), map[string]any{"name": "Frost", "action": "alert",
		"severity": "critical", "condition": `min("air_temp_c", "1h", "farm") <= 1`}).want(http.StatusCreated).decode(&farmWide)
	if farmWide.ZoneID != nil || farmWide.Action != "alert" {
		t.Fatalf("farm-wide %+v", farmWide)
	}
	var all []ruleJSON
	e.login("viewer@aghali.test").do("GET", fmt.Sprintf("/api/v1/farms/%d/rules", e.farmA.ID), nil).want(http.StatusOK).decode(&all)
	if len(all) != 2 || all[0].ID != farmWide.ID {
		t.Fatalf("farm rules %+v", all)
	}
	e.login("farmer@aghali.test").do("POST", fmt.Sprintf("/api/v1/farms/%d/rules", e.farmA.ID), map[string]any{"name": "x",
		"condition": "hour > 1", "action": "skip"}).problem(http.StatusForbidden)
	e.outsider().do("GET", fmt.Sprintf("/api/v1/farms/%d/rules", e.farmA.ID), nil).problem(http.StatusNotFound)
	e.noForgottenAudit()
}

func TestRuleDryRunAndBacktest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	r := e.newRig(e.farmA.ID, "Orchard", map[string]any{"application_rate_mm_h": 6})
	e.probe(r.zone.ID, 0.15, 0.16)

	// An unsaved rule, evaluated now (05:00 UTC is 09:00 in Baku).
	var dr dryRunResponse
	agro.do("POST", fmt.Sprintf("/api/v1/zones/%d/rules/dry-run", r.zone.ID), map[string]any{
		"condition": `mean("soil_vwc", "1h") < 0.18 && hour >= 5 && default(forecast_rain_24h, 0) < 5`, "duration_s": 1200}).
		want(http.StatusOK).decode(&dr)
	if len(dr.Results) != 1 {
		t.Fatalf("dry run %+v", dr)
	}
	res := dr.Results[0]
	if !res.Known || !res.Holds || !res.Act || res.DurationS == nil || *res.DurationS != 1200 || res.DepthMM == nil || *res.DepthMM != 2 {
		t.Fatalf("dry run result %+v", res)
	}
	facts := map[string]factJSON{}
	for _, f := range res.Facts {
		facts[f.Name] = f
	}
	if f := facts[`mean("soil_vwc", "1h")`]; f.Value != 0.155 || f.N != 2 {
		t.Errorf("soil fact %+v", f)
	}
	if f := facts["hour"]; f.Value != float64(9) {
		t.Errorf("hour fact %+v", f)
	}
	if f := facts["forecast_rain_24h"]; !f.Missing || f.Value != nil {
		t.Errorf("forecast fact %+v", f)
	}
	var runs []runJSON
	agro.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs", e.farmA.ID), nil).want(http.StatusOK).decode(&runs)
	if len(runs) != 0 {
		t.Fatal("a dry run started a run")
	}

	// A stored rule: dry run and backtest over the last hours.
	var stored ruleJSON
	agro.do("POST", fmt.Sprintf("/api/v1/zones/%d/rules", r.zone.ID), map[string]any{"name": "Dry", "metric": "soil_vwc",
		"op": "<", "threshold": 0.18, "duration_s": 600, "cooldown_s": 7200}).want(http.StatusCreated).decode(&stored)
	agro.do("POST", fmt.Sprintf("/api/v1/rules/%d/dry-run", stored.ID), nil).want(http.StatusOK).decode(&dr)
	if dr.Rule.ID != stored.ID || !dr.Results[0].Act {
		t.Fatalf("stored dry run %+v", dr)
	}
	var bt backtestJSON
	agro.do("POST", fmt.Sprintf("/api/v1/rules/%d/backtest", stored.ID), map[string]any{
		"from": e.clock.Now().Add(-3 * time.Hour), "to": e.clock.Now().Add(time.Minute), "step_s": 60}).want(http.StatusOK).decode(&bt)
	if bt.Runs != 1 || len(bt.Decisions) != 1 || bt.Decisions[0].Action != "irrigate" || bt.Decisions[0].DurationS != 600 ||
		bt.Decisions[0].ID != nil || *bt.Decisions[0].OriginID != stored.ID || len(bt.Assumptions) == 0 || *bt.StepS != 60 {
		t.Fatalf("backtest %+v", bt)
	}
	p := agro.do("POST", fmt.Sprintf("/api/v1/rules/%d/backtest", stored.ID), map[string]any{"step_s": 1}).problem(http.StatusUnprocessableEntity)
	if p.Errors[0].Field != "step_s" {
		t.Errorf("step 1 s: %+v", p)
	}
	// An unsaved schedule, replayed.
	agro.do("POST", fmt.Sprintf("/api/v1/zones/%d/schedules/backtest", r.zone.ID), map[string]any{
		"schedule": map[string]any{"cron": "0 6 * * *", "duration_s": 900, "weekdays": []string{"mon", "wed"}},
		"from":     time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "to": time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)}).
		want(http.StatusOK).decode(&bt)
	if bt.Evaluations != 4 || bt.Runs != 4 || bt.WaterS != 3600 || bt.StepS != nil { // Mondays and Wednesdays of 1–14 June
		t.Fatalf("schedule backtest %+v", bt)
	}
	e.login("viewer@aghali.test").do("POST", fmt.Sprintf("/api/v1/rules/%d/backtest", stored.ID), map[string]any{}).
		problem(http.StatusForbidden)
}

func TestSchedulesDecisionsWeatherAndBalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	viewer := e.login("viewer@aghali.test")
	r := e.newRig(e.farmA.ID, "Tomatoes", map[string]any{"crop": "Tomato", "soil": "loam", "application_rate_mm_h": 5,
		"planting_date": "2026-06-01", "theta_fc": 0.3, "theta_wp": 0.14})
	if r.zone.Crop != "tomato" || r.zone.PlantingDate == nil || *r.zone.PlantingDate != "2026-06-01" || *r.zone.ThetaFC != 0.3 {
		t.Fatalf("zone %+v", r.zone)
	}
	p := agro.do("PATCH", fmt.Sprintf("/api/v1/zones/%d", r.zone.ID), map[string]any{"planting_date": "1st of June"}).
		problem(http.StatusUnprocessableEntity)
	if p.Errors[0].Field != "planting_date" {
		t.Errorf("bad date %+v", p)
	}
	p = agro.do("PATCH", fmt.Sprintf("/api/v1/zones/%d", r.zone.ID), map[string]any{"theta_wp": 0.35}).problem(http.StatusUnprocessableEntity)
	if p.Errors[0].Field != "theta_wp" {
		t.Errorf("wilting point above field capacity %+v", p)
	}

	var sc scheduleJSON
	agro.do("POST", fmt.Sprintf("/api/v1/zones/%d/schedules", r.zone.ID), map[string]any{"name": "Balance", "cron": "0 5 * * *",
		"mode": "water_balance", "weekdays": []string{"mon", "thu"}, "day_parity": "even", "skip_rain_mm": 5, "skip_frost_c": 1,
		"cycle_s": 1800, "soak_s": 900}).want(http.StatusCreated).decode(&sc)
	if sc.Mode != "water_balance" || sc.DurationS != nil || strings.Join(sc.Weekdays, ",") != "mon,thu" || sc.DayParity != "even" ||
		*sc.SkipRainMM != 5 || *sc.CycleS != 1800 || *sc.SoakS != 900 || sc.SeasonalPct != 100 || sc.NextAt == nil ||
		!sc.NextAt.Equal(time.Date(2026, 7, 16, 1, 0, 0, 0, time.UTC)) { // Thursday 16 July, 05:00 in Baku
		t.Fatalf("schedule %+v (next %v)", sc, sc.NextAt)
	}
	agro.do("PATCH", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), map[string]any{"skip_rain_mm": nil, "cycle_s": nil}).
		want(http.StatusOK).decode(&sc)
	if sc.SkipRainMM != nil || sc.CycleS != nil || sc.SoakS != nil {
		t.Fatalf("cleared %+v", sc)
	}
	p = agro.do("POST", fmt.Sprintf("/api/v1/zones/%d/schedules", r.zone.ID), map[string]any{"name": "x", "cron": "0 5 * * *",
		"duration_s": 60, "day_parity": "prime"}).problem(http.StatusUnprocessableEntity)
	if p.Errors[0].Field != "day_parity" {
		t.Errorf("parity %+v", p)
	}

	var bal balanceJSON
	viewer.do("GET", fmt.Sprintf("/api/v1/zones/%d/water-balance", r.zone.ID), nil).want(http.StatusOK).decode(&bal)
	if bal.Status.Problem != "" || bal.Status.Crop != "tomato" || bal.Status.TAW == 0 || len(bal.Days) != 14 {
		t.Fatalf("balance %+v (%d days)", bal.Status, len(bal.Days))
	}
	var et0 []et0DayJSON
	viewer.do("GET", fmt.Sprintf("/api/v1/farms/%d/et0?from=2026-07-01&to=2026-07-03", e.farmA.ID), nil).want(http.StatusOK).decode(&et0)
	if len(et0) != 3 || et0[0].Day != "2026-07-01" || et0[0].ET0 != nil || !strings.Contains(et0[0].Sources, "no air temperature") {
		t.Fatalf("ET0 %+v", et0)
	}
	viewer.do("GET", fmt.Sprintf("/api/v1/farms/%d/et0?from=2026-07-03&to=2026-07-01", e.farmA.ID), nil).problem(http.StatusUnprocessableEntity)
	var hours []et0HourJSON
	viewer.do("GET", fmt.Sprintf("/api/v1/farms/%d/et0/hourly?date=2026-07-01", e.farmA.ID), nil).want(http.StatusOK).decode(&hours)
	if len(hours) != 24 || hours[0].ET0 != nil || hours[0].Problem == "" {
		t.Fatalf("hours %+v", hours)
	}
	var ws weatherSettingsJSON
	agro.do("PUT", fmt.Sprintf("/api/v1/farms/%d/weather-settings", e.farmA.ID), map[string]any{"elevation_m": 610}).
		want(http.StatusOK).decode(&ws)
	if ws.ElevationM != 610 || ws.KRs != 0.16 || ws.UpdatedAt == nil {
		t.Fatalf("settings %+v", ws)
	}
	viewer.do("PUT", fmt.Sprintf("/api/v1/farms/%d/weather-settings", e.farmA.ID), map[string]any{"elevation_m": 1}).problem(http.StatusForbidden)
	agro.do("PUT", fmt.Sprintf("/api/v1/farms/%d/forecast", e.farmA.ID), map[string]any{"source": "test", "periods": []map[string]any{
		{"from": "2026-07-06T00:00:00Z", "to": "2026-07-07T00:00:00Z", "rain_mm": 3}}}).want(http.StatusNoContent)
	agro.do("PUT", fmt.Sprintf("/api/v1/farms/%d/forecast", e.farmA.ID), map[string]any{"periods": []map[string]any{}}).
		problem(http.StatusUnprocessableEntity)

	// Decisions: a schedule's fired occurrence shows up with its reason.
	e.irr.RaiseAlert(context.Background(), irrigationAlert(e.farmA.ID, "x", "y")) // unrelated: not a decision
	var ds []decisionJSON
	viewer.do("GET", fmt.Sprintf("/api/v1/farms/%d/decisions?zone=%d", e.farmA.ID, r.zone.ID), nil).want(http.StatusOK).decode(&ds)
	if len(ds) != 0 {
		t.Fatalf("decisions %+v", ds)
	}
	viewer.do("GET", fmt.Sprintf("/api/v1/farms/%d/decisions?origin=user", e.farmA.ID), nil).problem(http.StatusUnprocessableEntity)

	var crops []cropJSON
	viewer.do("GET", "/api/v1/crops", nil).want(http.StatusOK).decode(&crops)
	var soils []soilJSON
	viewer.do("GET", "/api/v1/soils", nil).want(http.StatusOK).decode(&soils)
	var lang map[string]any
	viewer.do("GET", "/api/v1/rule-language", nil).want(http.StatusOK).decode(&lang)
	if len(crops) < 10 || len(soils) != 9 || len(lang["facts"].([]any)) < 20 {
		t.Fatalf("catalogues: %d crops, %d soils, %v", len(crops), len(soils), lang)
	}
	e.noForgottenAudit()
}
