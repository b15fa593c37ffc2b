package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Alert severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert kinds raised by package irrigation. Subjects name what the alert is about, e.g.
// "valve:12", so each (farm, kind, subject) has at most one open alert.
const (
	AlertCommandExpired        = "command_expired"
	AlertCommandRejected       = "command_rejected"
	AlertValveUnexpectedlyOpen = "valve_unexpectedly_open"
	AlertZoneWithoutValve      = "zone_without_valve"
	AlertScheduleSkipped       = "schedule_skipped"
	AlertEmergencyStop         = "emergency_stop"      // subject farm:<id>
	AlertLeak                  = "leak"                // flow while every valve metered is closed
	AlertFlowHigh              = "flow_high"           // more than nominal + tolerance: zones shut off
	AlertFlowLow               = "flow_low"            // less than nominal − tolerance
	AlertValveStuckOpen        = "valve_stuck_open"    // reported open after a confirmed close or its duration
	AlertActuatorFailed        = "actuator_failed"     // a pump or master valve did not switch on
	AlertRunNotAdmitted        = "run_waited_too_long" // a run gave up waiting for its source
)

// Alert is something a person should look at.
type Alert struct {
	ID             int64
	FarmID         int64
	Kind           string
	Severity       string
	Subject        string
	Message        string
	OpenedAt       time.Time
	ResolvedAt     *time.Time
	AcknowledgedAt *time.Time
	AcknowledgedBy *int64
}

func subjectValve(id int64) string    { return fmt.Sprintf("valve:%d", id) }
func subjectZone(id int64) string     { return fmt.Sprintf("zone:%d", id) }
func subjectSchedule(id int64) string { return fmt.Sprintf("schedule:%d", id) }

const alertColumns = `id, farm_id, kind, severity, subject, message, opened_at, resolved_at, acknowledged_at, acknowledged_by`

func scanAlert(row pgx.Row) (Alert, error) {
	var a Alert
	err := row.Scan(&a.ID, &a.FarmID, &a.Kind, &a.Severity, &a.Subject, &a.Message, &a.OpenedAt, &a.ResolvedAt,
		&a.AcknowledgedAt, &a.AcknowledgedBy)
	return a, interpretError(err, "alert")
}

func validateAlert(a *Alert) error {
	a.Kind = strings.TrimSpace(a.Kind)
	if a.Kind == "" {
		return invalid("kind", "required")
	}
	switch a.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	case "":
		a.Severity = SeverityWarning
	default:
		return invalid("severity", "%q is not one of info, warning, critical", a.Severity)
	}
	if strings.TrimSpace(a.Message) == "" {
		return invalid("message", "required")
	}
	return nil
}

// RaiseAlert opens an alert, or returns the open one with the same farm, kind and subject
// unchanged: raising is idempotent while the alert is open.
func (s *Store) RaiseAlert(ctx context.Context, a Alert) (Alert, error) {
	if err := validateAlert(&a); err != nil {
		return Alert{}, err
	}
	return raiseAlert(ctx, s.db, a, s.now(), s.metrics)
}

func (t *txn) raiseAlert(ctx context.Context, s *Store, a Alert) error {
	if err := validateAlert(&a); err != nil {
		return err
	}
	_, err := raiseAlert(ctx, t.tx, a, t.now, s.metrics)
	if err == nil {
		s.log.Warn("alert", "farm", a.FarmID, "kind", a.Kind, "subject", a.Subject, "message", a.Message)
	}
	return err
}

func raiseAlert(ctx context.Context, q querier, a Alert, now time.Time, m *storeMetrics) (Alert, error) {
	got, err := scanAlert(q.QueryRow(ctx, `INSERT INTO alerts (farm_id, kind, severity, subject, message, opened_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (farm_id, kind, subject) WHERE resolved_at IS NULL DO NOTHING
		RETURNING `+alertColumns, a.FarmID, a.Kind, a.Severity, a.Subject, a.Message, now))
	if err == nil {
		m.alertsRaised.WithLabelValues(a.Kind).Inc()
		return got, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Alert{}, err
	}
	// Already open: return it as it is.
	return scanAlert(q.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE farm_id = $1 AND kind = $2 AND subject = $3 AND resolved_at IS NULL`, a.FarmID, a.Kind, a.Subject))
}

// ResolveAlert closes the open alert of this farm, kind and subject; nothing open is no error.
func (s *Store) ResolveAlert(ctx context.Context, farmID int64, kind, subject string) error {
	return resolveAlert(ctx, s.db, farmID, kind, subject, s.now())
}

func (t *txn) resolveAlert(ctx context.Context, farmID int64, kind, subject string) error {
	return resolveAlert(ctx, t.tx, farmID, kind, subject, t.now)
}

func resolveAlert(ctx context.Context, q querier, farmID int64, kind, subject string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE alerts SET resolved_at = $4
		WHERE farm_id = $1 AND kind = $2 AND subject = $3 AND resolved_at IS NULL`, farmID, kind, subject, now)
	return interpretError(err, "resolve alert")
}

// AckAlert records that a person has seen the alert (it stays open until resolved).
// Acknowledging twice keeps the first acknowledgement.
func (s *Store) AckAlert(ctx context.Context, id, userID int64) (Alert, error) {
	return scanAlert(s.db.QueryRow(ctx, `UPDATE alerts
		SET acknowledged_at = COALESCE(acknowledged_at, $2),
		    acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN $3 ELSE acknowledged_by END
		WHERE id = $1 RETURNING `+alertColumns, id, s.now(), userID))
}

// Alert returns one alert.
func (s *Store) Alert(ctx context.Context, id int64) (Alert, error) {
	return scanAlert(s.db.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id))
}

// Alerts lists the alerts of the given farms, newest first; openOnly leaves out resolved ones.
// limit ≤ 0 means 100.
func (s *Store) Alerts(ctx context.Context, farmIDs []int64, openOnly bool, limit int) ([]Alert, error) {
	if limit <= 0 {
		limit = 100
	}
	if farmIDs == nil {
		farmIDs = []int64{}
	}
	rows, err := s.db.Query(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE farm_id = ANY($1) AND (NOT $2 OR resolved_at IS NULL)
		ORDER BY opened_at DESC, id DESC LIMIT $3`, farmIDs, openOnly, limit)
	if err != nil {
		return nil, interpretError(err, "list alerts")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) { return scanAlert(r) })
}
