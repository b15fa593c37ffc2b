package irrigation

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pipeTx is a transaction that spends as few round trips as it can. Under ingest load every
// round trip waits behind the commits of others, so a decision's latency is mostly the number of
// its round trips. Its BEGIN, and the writes queued with later, are not sent alone: they go in
// one pipeline with the next statement that needs an answer, and the last of them with COMMIT.
//
// Statements are still executed in the order they are issued, so a read sees every write queued
// before it. A queued write that fails fails the statement it was sent with (and so the
// transaction), with its own description.
type pipeTx struct {
	conn    *pgxpool.Conn
	pending []pendingStmt // BEGIN (until sent) and the writes queued with later
	begun   bool          // BEGIN has been sent
	broken  error         // BEGIN failed (the batch it went with never ran): refuse the rest
	done    bool          // committed or rolled back, the connection released
}

type pendingStmt struct {
	what string // for errors: what the statement does
	sql  string
	args []any
}

func beginPipeTx(ctx context.Context, db *pgxpool.Pool) (*pipeTx, error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &pipeTx{conn: conn, pending: []pendingStmt{{what: "begin", sql: "BEGIN"}}}, nil
}

// later queues a write whose outcome nothing waits for: it is sent with the next statement, or
// with COMMIT.
func (t *pipeTx) later(what, sql string, args ...any) {
	t.pending = append(t.pending, pendingStmt{what: what, sql: sql, args: args})
}

// SendBatch sends b after the pending statements, in one round trip.
func (t *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.broken != nil {
		return pgx.FailedBatchResults(b, t.broken)
	}
	if len(t.pending) == 0 {
		return t.conn.SendBatch(ctx, b)
	}
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(t.pending)+len(b.QueuedQueries))}
	for _, p := range t.pending {
		all.Queue(p.sql, p.args...)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	ahead := t.pending
	t.pending = nil
	t.begun = true
	return &afterPending{BatchResults: t.conn.SendBatch(ctx, all), ahead: ahead, tx: t}
}

// withPending sends one statement after the pending ones, in one round trip.
func (t *pipeTx) withPending(ctx context.Context, sql string, args ...any) pgx.BatchResults {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return t.SendBatch(ctx, b)
}

func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.broken != nil {
		return pgconn.CommandTag{}, t.broken
	}
	if len(t.pending) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	br := t.withPending(ctx, sql, args...)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.broken != nil {
		return errRow{t.broken}
	}
	if len(t.pending) == 0 {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	br := t.withPending(ctx, sql, args...)
	return &batchRow{row: br.QueryRow(), br: br}
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.broken != nil {
		return nil, t.broken
	}
	if len(t.pending) == 0 {
		return t.conn.Query(ctx, sql, args...)
	}
	br := t.withPending(ctx, sql, args...)
	rows, err := br.Query()
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// Commit sends the pending writes and COMMIT in one round trip. After an error the
// transaction is still to be rolled back.
func (t *pipeTx) Commit(ctx context.Context) error {
	if t.done {
		return errors.New("transaction already ended")
	}
	if t.broken != nil {
		return t.broken
	}
	if !t.begun && len(t.pending) == 1 { // only the BEGIN: nothing to send
		t.release()
		return nil
	}
	tag, err := t.Exec(ctx, "COMMIT")
	if err == nil && tag.String() == "ROLLBACK" {
		err = errors.New("the transaction had failed and was rolled back")
	}
	if err == nil {
		t.release()
	}
	return err
}

// Rollback ends the transaction unless it has ended; it is safe to call after Commit.
func (t *pipeTx) Rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	defer t.release()
	if !t.begun || t.conn.Conn().PgConn().TxStatus() == 'I' {
		return nil
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	return err
}

// release hands the connection back; the pool closes it if a transaction is still open on it.
func (t *pipeTx) release() {
	t.done = true
	t.pending = nil
	t.conn.Release()
}

// afterPending reads the results of the pending statements sent ahead of a batch before the
// batch's own.
type afterPending struct {
	pgx.BatchResults
	ahead []pendingStmt
	tx    *pipeTx
	err   error
}

func (a *afterPending) drain() error {
	for len(a.ahead) > 0 {
		p := a.ahead[0]
		a.ahead = a.ahead[1:]
		if _, err := a.BatchResults.Exec(); err != nil && a.err == nil {
			a.err = interpretError(err, p.what)
			if p.sql == "BEGIN" {
				// The batch failed as a whole (a cancelled context, say): without a
				// transaction, later statements would each commit on their own.
				a.tx.broken = a.err
			}
		}
	}
	return a.err
}

func (a *afterPending) Exec() (pgconn.CommandTag, error) {
	if err := a.drain(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return a.BatchResults.Exec()
}

func (a *afterPending) Query() (pgx.Rows, error) {
	if err := a.drain(); err != nil {
		return nil, err
	}
	return a.BatchResults.Query()
}

func (a *afterPending) QueryRow() pgx.Row {
	if err := a.drain(); err != nil {
		return errRow{err}
	}
	return a.BatchResults.QueryRow()
}

func (a *afterPending) Close() error {
	derr := a.drain()
	err := a.BatchResults.Close()
	if derr != nil {
		return derr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// batchRow is the one row of a batch of one statement: scanning it ends the batch.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r *batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// batchRows are the rows of a batch of one statement: closing them ends the batch.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}
