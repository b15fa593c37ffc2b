// Package migrations owns Aghali's SQL schema: numbered .sql files embedded in the binary and
// applied in order, each in its own transaction, under a PostgreSQL advisory lock so that several
// `aghali serve` instances starting together apply each file exactly once. Every applied file is
// recorded in schema_migrations with its checksum; an applied file that has since changed is an
// error, never silently re-run.
//
// Subpackages: pgcluster runs a private PostgreSQL+PostGIS cluster (for `aghali demo` and tests);
// pgtest is the test-database harness built on it.
package migrations
