package api

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// OrganisationByName returns the id of the organisation with exactly that name (ErrNotFound
// when there is none); for the CLI, which names organisations rather than numbering them.
func OrganisationByName(ctx context.Context, db *pgxpool.Pool, name string) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, `SELECT id FROM organisations WHERE name = $1`, strings.TrimSpace(name)).Scan(&id)
	return id, dbError(err, "organisation")
}
