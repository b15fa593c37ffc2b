package irrigation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/migrations/pgtest"
)

// TestPipeTx checks what the pipelined transactions promise: statements run in the order they
// are issued (a read sees the writes queued before it), a queued write that fails fails the
// transaction with its own description and leaves nothing behind, and the connection is fine
// afterwards.
func TestPipeTx(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	s, err := NewStore(db, noSecrets{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE pipe_probe (id int PRIMARY KEY, note text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pipe_probe`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Queued writes are seen by the next read, by a batch, by rows; the last go with COMMIT.
	err = s.withTx(ctx, func(tx *txn) error {
		tx.tx.later("first", `INSERT INTO pipe_probe VALUES (1, 'one')`)
		tx.tx.later("second", `INSERT INTO pipe_probe VALUES (2, 'two')`)
		var n int
		if err := tx.tx.QueryRow(ctx, `SELECT count(*) FROM pipe_probe`).Scan(&n); err != nil || n != 2 {
			t.Errorf("read after two queued writes: %d, %v", n, err)
		}
		tx.tx.later("third", `INSERT INTO pipe_probe VALUES (3, 'three')`)
		rows, err := tx.tx.Query(ctx, `SELECT id FROM pipe_probe ORDER BY id`)
		if err != nil {
			return err
		}
		var ids []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil || len(ids) != 3 {
			t.Errorf("rows after a third queued write: %v, %v", ids, err)
		}
		tx.tx.later("fourth", `INSERT INTO pipe_probe VALUES (4, 'four')`)
		return nil
	})
	if err != nil || count() != 4 {
		t.Fatalf("commit: %v, %d rows", err, count())
	}

	// A queued write that fails fails the statement sent with it, and the transaction.
	err = s.withTx(ctx, func(tx *txn) error {
		tx.tx.later("insert five", `INSERT INTO pipe_probe VALUES (5, 'five')`)
		tx.tx.later("insert a duplicate", `INSERT INTO pipe_probe VALUES (1, 'again')`)
		var n int
		return tx.tx.QueryRow(ctx, `SELECT count(*) FROM pipe_probe`).Scan(&n)
	})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "insert a duplicate") {
		t.Errorf("duplicate queued before a read: %v", err)
	}
	// … or COMMIT, when nothing was sent after it.
	err = s.withTx(ctx, func(tx *txn) error {
		tx.tx.later("insert six", `INSERT INTO pipe_probe VALUES (6, 'six')`)
		tx.tx.later("insert a null", `INSERT INTO pipe_probe VALUES (7, NULL)`)
		return nil
	})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("null queued before the commit: %v", err)
	}
	if n := count(); n != 4 {
		t.Errorf("failed transactions left rows behind: %d rows, want 4", n)
	}

	// A transaction that sent nothing commits nothing; one that fails in Go rolls back.
	if err := s.withTx(ctx, func(*txn) error { return nil }); err != nil {
		t.Errorf("empty transaction: %v", err)
	}
	boom := errors.New("boom")
	err = s.withTx(ctx, func(tx *txn) error {
		if _, err := tx.tx.Exec(ctx, `INSERT INTO pipe_probe VALUES (8, 'eight')`); err != nil {
			return err
		}
		tx.tx.later("insert nine", `INSERT INTO pipe_probe VALUES (9, 'nine')`)
		return boom
	})
	if !errors.Is(err, boom) || count() != 4 {
		t.Errorf("rolled back: %v, %d rows", err, count())
	}
	// A first batch that never ran (its context was cancelled) took BEGIN with it: what follows
	// is refused rather than committed statement by statement.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = s.withTx(ctx, func(tx *txn) error {
		var one int
		if err := tx.tx.QueryRow(cancelled, `SELECT 1`).Scan(&one); err == nil {
			t.Error("a read on a cancelled context worked")
		}
		_, err := tx.tx.Exec(ctx, `INSERT INTO pipe_probe VALUES (10, 'ten')`)
		return err
	})
	if err == nil || count() != 4 {
		t.Errorf("after a batch that never ran: %v, %d rows", err, count())
	}
	// The pool's connections are all usable (none was left inside a transaction).
	for range 2 * int(db.Config().MaxConns) {
		if err := s.withTx(ctx, func(tx *txn) error {
			var one int
			return tx.tx.QueryRow(ctx, `SELECT 1`).Scan(&one)
		}); err != nil {
			t.Fatalf("afterwards: %v", err)
		}
	}
}

type noSecrets struct{}

func (noSecrets) NewSecret(context.Context, string, string) (string, error) {
	return "", errors.New("no secrets here")
}

// TestPeriodicPassGivesWay checks that the background pass waits for the passes for fresh
// readings, and not for ever.
func TestPeriodicPassGivesWay(t *testing.T) {
	e := &Engine{idle: make(chan struct{}, 1)}
	e.events.Add(1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		e.eventDone()
	}()
	e.giveWay(context.Background())
	if n := e.events.Load(); n != 0 {
		t.Errorf("gave way until %d passes were still under way", n)
	}
	e.events.Add(1) // one that never ends
	done := make(chan struct{})
	go func() {
		e.giveWay(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the periodic pass waited for ever")
	}
}
