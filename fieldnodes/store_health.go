package fieldnodes

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Health statuses of a node, from how long ago it was last heard against its reporting interval.
const (
	HealthOK        = "ok"         // heard within one interval (and a grace of half of one)
	HealthLate      = "late"       // missed an interval, not yet MissedIntervals of them
	HealthSilent    = "silent"     // missed MissedIntervals intervals or more: alerted
	HealthNeverSeen = "never_seen" // registered, never heard (silent once MissedIntervals have passed since)
)

// Link qualities (NodeHealth.LinkQuality).
const (
	LinkGood = "good"
	LinkFair = "fair"
	LinkPoor = "poor"
)

// NodeHealth is how a node is doing: when it was last heard against its reporting interval, its
// battery, its radio link, and the health alerts open for it.
type NodeHealth struct {
	NodeID            int64
	FarmID            int64
	UID               string
	Name              string
	Profile           string
	ExpectedIntervalS int
	LastSeenAt        *time.Time
	Status            string // HealthOK, HealthLate, HealthSilent, HealthNeverSeen
	MissedIntervals   int    // whole intervals since last heard (beyond the grace)
	BatteryV          *float64
	BatteryPct        *float64
	BatteryLow        bool
	RSSIDBm           *float64
	SNRDB             *float64
	SpreadingFactor   *int
	Gateways          *int
	FCnt              *int64
	FCntResets        int
	LinkMarginDB      *float64
	LinkQuality       string // LinkGood, LinkFair, LinkPoor; "" when unknown
	SilentAlert       bool   // a node_silent alert is open
	BatteryAlert      bool   // a node_battery_low alert is open
}

// healthColumns are read for NodeHealth, in healthFields' order.
const healthColumns = `id, farm_id, uid, name, profile, expected_interval_s, last_seen_at, created_at, battery_v, battery_pct,
	rssi_dbm, snr_db, spreading_factor, gateways, f_cnt, f_cnt_resets, link_margin_db, silent_alert_at, battery_alert_at`

type healthRow struct {
	h            NodeHealth
	createdAt    time.Time
	silentSince  *time.Time
	batterySince *time.Time
}

func (r *healthRow) fields() []any {
	h := &r.h
	return []any{&h.NodeID, &h.FarmID, &h.UID, &h.Name, &h.Profile, &h.ExpectedIntervalS, &h.LastSeenAt, &r.createdAt,
		&h.BatteryV, &h.BatteryPct, &h.RSSIDBm, &h.SNRDB, &h.SpreadingFactor, &h.Gateways, &h.FCnt, &h.FCntResets,
		&h.LinkMarginDB, &r.silentSince, &r.batterySince}
}

// NodeHealth returns the health of every node of a farm, by node id.
func (s *Store) NodeHealth(ctx context.Context, farmID int64) ([]NodeHealth, error) {
	rows, err := s.healthRows(ctx, s.now(), `WHERE farm_id = $1 ORDER BY id`, farmID)
	if err != nil {
		return nil, err
	}
	out := make([]NodeHealth, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.h)
	}
	return out, nil
}

func (s *Store) healthRows(ctx context.Context, now time.Time, where string, args ...any) ([]healthRow, error) {
	rows, err := s.db.Query(ctx, `SELECT `+healthColumns+` FROM nodes `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("node health: %w", err)
	}
	defer rows.Close()
	var out []healthRow
	lows := map[string][2]float64{}
	for rows.Next() {
		var r healthRow
		if err := rows.Scan(r.fields()...); err != nil {
			return nil, fmt.Errorf("node health: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("node health: %w", err)
	}
	for i := range out {
		r := &out[i]
		lo, ok := lows[r.h.Profile]
		if !ok {
			lo = [2]float64{3.3, 20}
			if p, err := s.Profile(ctx, r.h.Profile); err == nil {
				lo[0], lo[1] = p.Thresholds()
			}
			lows[r.h.Profile] = lo
		}
		assess(r, now, s.cfg.MissedIntervals, lo[0], lo[1])
	}
	return out, nil
}

// assess works out r's status, battery and link quality at now.
func assess(r *healthRow, now time.Time, missedAlert int, lowV, lowPct float64) {
	h := &r.h
	interval := time.Duration(max(h.ExpectedIntervalS, 1)) * time.Second
	since := r.createdAt
	if h.LastSeenAt != nil {
		since = *h.LastSeenAt
	}
	// Half an interval of grace: a node is not late because it reports a little after the hour.
	over := now.Sub(since) - interval/2
	h.MissedIntervals = max(int(over/interval), 0)
	switch {
	case h.MissedIntervals >= missedAlert:
		h.Status = HealthSilent
	case h.LastSeenAt == nil:
		h.Status = HealthNeverSeen
	case h.MissedIntervals > 0:
		h.Status = HealthLate
	default:
		h.Status = HealthOK
	}
	h.BatteryLow = h.BatteryPct != nil && *h.BatteryPct <= lowPct || h.BatteryPct == nil && h.BatteryV != nil && *h.BatteryV <= lowV
	h.LinkQuality = linkQuality(h.SNRDB, h.RSSIDBm, h.SpreadingFactor)
	h.SilentAlert = r.silentSince != nil
	h.BatteryAlert = r.batterySince != nil
}

// batteryRecovered: a low battery counts as recovered only clearly above its threshold, so that
// a battery hovering around it does not raise and resolve alerts all day.
func batteryRecovered(h NodeHealth, lowV, lowPct float64) bool {
	if h.BatteryPct != nil {
		return *h.BatteryPct > lowPct+5
	}
	if h.BatteryV != nil {
		return *h.BatteryV > lowV+0.1
	}
	return true
}

// linkQuality rates a link: for LoRa, the SNR's margin above the demodulation floor of the
// spreading factor (SF7 −7.5 dB … SF12 −20 dB): good ≥ 10 dB, fair ≥ 3 dB; otherwise the RSSI:
// good ≥ −90 dBm, fair ≥ −105 dBm.
func linkQuality(snr, rssi *float64, sf *int) string {
	if snr != nil && !math.IsNaN(*snr) {
		floor := -7.5
		if sf != nil && *sf >= 7 && *sf <= 12 {
			floor = -7.5 - 2.5*float64(*sf-7)
		}
		switch margin := *snr - floor; {
		case margin >= 10:
			return LinkGood
		case margin >= 3:
			return LinkFair
		}
		return LinkPoor
	}
	if rssi != nil {
		switch {
		case *rssi >= -90:
			return LinkGood
		case *rssi >= -105:
			return LinkFair
		}
		return LinkPoor
	}
	return ""
}

// markAlert records that the health monitor holds (or no longer holds) an alert of kind for node.
func (s *Store) markAlert(ctx context.Context, node int64, kind string, open bool, at time.Time) error {
	col := "silent_alert_at"
	if kind == AlertBatteryLow {
		col = "battery_alert_at"
	}
	var v *time.Time
	if open {
		v = &at
	}
	if _, err := s.db.Exec(ctx, `UPDATE nodes SET `+col+` = $2 WHERE id = $1`, node, v); err != nil {
		return fmt.Errorf("mark %s alert of node %d: %w", kind, node, err)
	}
	return nil
}
