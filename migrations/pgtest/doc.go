// Package pgtest is the test-database harness: one throwaway PostgreSQL+PostGIS cluster per test
// binary (or the server at TEST_DATABASE_URL), a template database migrated once, and a fresh
// database per test cloned from it, so tests may call t.Parallel(). When PostgreSQL or PostGIS is
// missing the run fails and says how to install them; it never skips.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// then in a test: pool := pgtest.NewDB(t).
package pgtest
