package irrigation

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/rule"
)

// Alert kinds raised by rules and decisions.
const (
	// AlertRule is an alert rule's alert; subject "rule:<rule>:zone:<zone>".
	AlertRule = "rule"
	// AlertCannotWater: a rule, schedule or the water balance decided to water a zone but the
	// zone cannot be watered as asked (no application rate to turn a depth into a runtime, no
	// crop or soil for its water balance); subject "zone:<id>".
	AlertCannotWater = "cannot_water"
)

// Decision origins and actions.
const (
	DecisionIrrigate = "irrigate" // a run was started (or, in a backtest, would have been)
	DecisionSkip     = "skip"     // watering was due but did not happen, and why
	DecisionAlert    = "alert"    // an alert was raised
	DecisionResolve  = "resolve"  // an alert was resolved, or a skip stopped vetoing
	DecisionNone     = "none"     // checked, nothing to do (the water balance says the zone is fine)
)

// Decision is one automatic decision with its reason: a rule that acted or was held back, a
// schedule occurrence fired or skipped, a water-balance check. Backtests return the same, with
// nothing stored or sent.
type Decision struct {
	ID       int64
	FarmID   int64
	ZoneID   *int64
	At       time.Time
	Origin   string // rule, schedule, water_balance
	OriginID *int64
	Action   string // irrigate, skip, alert, resolve, none
	Reason   string
	RunID    *int64
	// StartsAt is when the water would start, when a backtest models the source's energy
	// window delaying it; nil: at At.
	StartsAt  *time.Time
	DurationS int
	DepthMM   *float64 // gross depth over the zone
	VolumeL   *float64
	// Facts are the values the decision was taken on: fact name → value (nil: no data).
	Facts map[string]any
}

// factsJSON turns the facts a condition used into the decision's record.
func factsJSON(used []rule.Used) map[string]any {
	out := make(map[string]any, len(used))
	for _, u := range used {
		if u.Value.Missing {
			out[u.Name] = nil
			continue
		}
		if f, ok := u.Value.V.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			out[u.Name] = nil
			continue
		}
		out[u.Name] = u.Value.V
	}
	return out
}

// withWater fills a decision's duration, depth and volume from a runtime on a zone.
func (d *Decision) withWater(z *zoneContext, seconds int) {
	d.DurationS = seconds
	if v := z.grossDepthFor(seconds); !math.IsNaN(v) {
		d.DepthMM = ptr(math.Round(v*100) / 100)
	}
	if v := z.volumeFor(seconds); !math.IsNaN(v) {
		d.VolumeL = ptr(math.Round(v))
	}
}

func recordDecision(ctx context.Context, q querier, d Decision) error {
	facts, err := json.Marshal(d.Facts)
	if err != nil {
		return err
	}
	if d.Facts == nil {
		facts = []byte("{}")
	}
	_, err = q.Exec(ctx, `INSERT INTO irrigation_decisions (farm_id, zone_id, at, origin, origin_id, action, reason, run_id,
			duration_s, depth_mm, volume_l, facts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.FarmID, d.ZoneID, d.At, d.Origin, d.OriginID, d.Action, d.Reason, d.RunID, nullInt(d.DurationS), d.DepthMM,
		d.VolumeL, facts)
	return interpretError(err, "record decision")
}

// DecisionFilter selects decisions.
type DecisionFilter struct {
	FarmID   int64
	ZoneID   *int64
	Origin   string // "": any
	OriginID *int64
	Before   *int64 // decision id: older ones only (next page)
	Limit    int    // 1–1000; 0: 100
}

// Decisions lists a farm's decisions, newest first.
func (s *Store) Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT id, farm_id, zone_id, at, origin, origin_id, action, reason, run_id,
			COALESCE(duration_s, 0), depth_mm, volume_l, facts
		FROM irrigation_decisions
		WHERE farm_id = $1 AND ($2::bigint IS NULL OR zone_id = $2) AND ($3 = '' OR origin = $3)
			AND ($4::bigint IS NULL OR origin_id = $4) AND ($5::bigint IS NULL OR id < $5)
		ORDER BY at DESC, id DESC LIMIT $6`, f.FarmID, f.ZoneID, f.Origin, f.OriginID, f.Before, f.Limit)
	if err != nil {
		return nil, interpretError(err, "decisions")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Decision, error) {
		var d Decision
		var facts []byte
		if err := r.Scan(&d.ID, &d.FarmID, &d.ZoneID, &d.At, &d.Origin, &d.OriginID, &d.Action, &d.Reason, &d.RunID,
			&d.DurationS, &d.DepthMM, &d.VolumeL, &facts); err != nil {
			return d, err
		}
		return d, json.Unmarshal(facts, &d.Facts)
	})
}
