package fieldnodes

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionLockKey serialises partition changes across processes (pg_advisory_xact_lock).
const partitionLockKey = 0x6167_6861_6c69_0001

// EnsurePartitions makes sure a monthly readings partition (UTC months, named
// readings_pYYYY_MM) exists for every month overlapping [from, to]. Rows already sitting in the
// DEFAULT partition for such a month are moved into the new partition in the same transaction,
// so creating a partition late never fails and never loses a reading. Safe to call from several
// processes at once.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	if to.Before(from) {
		return invalid("to", "before from")
	}
	for m := monthStart(from); !m.After(to); m = m.AddDate(0, 1, 0) {
		if err := s.ensurePartition(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func partitionName(month time.Time) string {
	return fmt.Sprintf("readings_p%04d_%02d", month.Year(), int(month.Month()))
}

func (s *Store) ensurePartition(ctx context.Context, month time.Time) error {
	name := partitionName(month)
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
		return fmt.Errorf("partition %s: %w", name, err)
	}
	if exists {
		return nil
	}
	lo, hi := month, month.AddDate(0, 1, 0)
	// Partition bounds must be literals; both come from time formatting, never from input.
	bounds := fmt.Sprintf("FROM ('%s') TO ('%s')", lo.Format(time.RFC3339), hi.Format(time.RFC3339))
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLockKey)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil || exists {
			return err
		}
		stmts := []string{
			`CREATE TABLE ` + name + ` (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
			`WITH moved AS (
				DELETE FROM readings_default WHERE ts >= '` + lo.Format(time.RFC3339) + `' AND ts < '` + hi.Format(time.RFC3339) + `'
				RETURNING node_id, metric_id, ts, value, flags)
			INSERT INTO ` + name + ` (node_id, metric_id, ts, value, flags) SELECT * FROM moved`,
			`ALTER TABLE readings ATTACH PARTITION ` + name + ` FOR VALUES ` + bounds,
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create partition %s: %w", name, err)
	}
	s.log.Info("created readings partition", "partition", name)
	return nil
}
