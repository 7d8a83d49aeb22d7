// Package dbtest opens fresh, migrated databases for tests: SQLite always,
// PostgreSQL when DESKFORGE_TEST_DATABASE_URL is set (each test in its own
// schema, dropped at the end).
package dbtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskforge/deskforge/models"
)

// EnvURL names the PostgreSQL server used by tests.
const EnvURL = "DESKFORGE_TEST_DATABASE_URL"

// Dialects returns the dialects to run a suite against: sqlite, plus postgres
// when EnvURL is set.
func Dialects() []string {
	if os.Getenv(EnvURL) != "" {
		return []string{models.DialectSQLite, models.DialectPostgres}
	}
	return []string{models.DialectSQLite}
}

// Open returns a fresh migrated database of the given dialect, closed (and
// for PostgreSQL, dropped) when the test ends. A postgres test is skipped with
// a clear message when EnvURL is unset.
func Open(t testing.TB, dialect string) *models.DB {
	t.Helper()
	return open(t, dialect, freshURL(t, dialect))
}

// OpenReplicas returns two handles on one fresh migrated database of
// dialect, each with its own pool and change feed, as two replicas have.
func OpenReplicas(t testing.TB, dialect string) (*models.DB, *models.DB) {
	t.Helper()
	rawURL := freshURL(t, dialect)
	return open(t, dialect, rawURL), open(t, dialect, rawURL)
}

// freshURL returns the URL of a new database (SQLite) or schema (PostgreSQL).
func freshURL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case models.DialectSQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
	case models.DialectPostgres:
		return postgresSchemaURL(t)
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

func open(t testing.TB, dialect, rawURL string) *models.DB {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}

// PostgresURL returns the URL of a fresh, empty PostgreSQL schema of the
// test's own (dropped at the end), for tests that start DeskForge processes
// on one database; the test is skipped when EnvURL is unset.
func PostgresURL(t testing.TB) string { return postgresSchemaURL(t) }

// postgresSchemaURL creates a schema of its own for the test and returns a
// URL whose search_path points at it.
func postgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/deskforge_test) to run them", EnvURL)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	// Short: River derives LISTEN channel names from the schema (63-byte limit).
	schema := fmt.Sprintf("t_%x", time.Now().UnixNano()^int64(rand.Uint32())) //nolint:gosec // G404: a unique test schema name, not a secret
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
