package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// The API's hot reads (a build, a page of builds, its total, whether a
// project exists) are short, index-bounded, read-only queries outside any
// transaction. They skip GORM's reflection, and on PostgreSQL also
// database/sql: they run on pgx's own pool with pgx's scanning (pgx caches
// the prepared statement per connection), which takes 20-30 % off the
// process's CPU per request (BENCHMARKS.md, "Builds API"). On SQLite they
// go through database/sql on connections of their own (DB.readers), so they
// see what is committed and never wait for a write transaction; its driver
// parses the statement on every query whether or not it was prepared, so a
// prepared-statement cache would not help.

// hotRows is the cursor of a hot read.
type hotRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// sqlRows adapts *sql.Rows to hotRows.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// queryHot runs a hot read (placeholders written ?). It does not watch
// ctx's cancellation (see bounded).
func (db *DB) queryHot(ctx context.Context, query string, args ...any) (hotRows, error) {
	ctx = bounded(ctx)
	if db.Dialect == DialectPostgres {
		rows, err := db.pgPool.Query(ctx, rebindPostgres(query), args...) //nolint:sqlclosecheck // returned to the caller, which closes it (getHot, listHot)
		if err != nil {
			return nil, err
		}
		return rows, nil
	}
	rows, err := db.readers.QueryContext(ctx, query, args...) //nolint:rowserrcheck // the caller checks hotRows.Err (getHot, listHot)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// errNoHotRow is what getHot returns when the query yields no row.
var errNoHotRow = errors.New("no row")

// getHot runs a hot read of one row and scans it with scan; errNoHotRow
// when there is none.
func (db *DB) getHot(ctx context.Context, query string, args []any, scan func(hotRows) error) error {
	rows, err := db.queryHot(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errNoHotRow
	}
	if err := scan(rows); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	return rows.Err()
}

// hotQuery is one statement of readHot: the query (placeholders written
// ?), its arguments, and what reads its rows.
type hotQuery struct {
	query string
	args  []any
	read  func(hotRows) error
}

// readHot runs hot reads in order and hands each one's rows to its read.
// On PostgreSQL they go in one pipelined batch on one connection, so all
// of them cost one round trip. It does not watch ctx's cancellation (see
// bounded).
func (db *DB) readHot(ctx context.Context, queries ...hotQuery) error {
	ctx = bounded(ctx)
	if db.Dialect != DialectPostgres {
		for _, q := range queries {
			rows, err := db.queryHot(ctx, q.query, q.args...)
			if err != nil {
				return err
			}
			if err := readRows(rows, q.read); err != nil {
				return err
			}
		}
		return nil
	}
	var batch pgx.Batch
	for _, q := range queries {
		batch.Queue(rebindPostgres(q.query), q.args...)
	}
	results := db.pgPool.SendBatch(ctx, &batch)
	for _, q := range queries {
		rows, err := results.Query() //nolint:sqlclosecheck // readRows closes them
		if err == nil {
			err = readRows(rows, q.read)
		}
		if err != nil {
			_ = results.Close() // the first error is the one to report
			return err
		}
	}
	return results.Close()
}

// readRows hands rows to read and closes them.
func readRows(rows hotRows, read func(hotRows) error) error {
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

// postgresQueries remembers the hot reads rewritten for PostgreSQL: there
// are a few dozen (the filters' combinations), and rewriting one cost more
// than looking it up.
var postgresQueries sync.Map // query with ? → query with $n

// rebindPostgres turns ? placeholders into PostgreSQL's $n (remembered).
func rebindPostgres(query string) string {
	if q, ok := postgresQueries.Load(query); ok {
		return q.(string)
	}
	q := numberPlaceholders(query)
	postgresQueries.Store(query, q)
	return q
}

// numberPlaceholders turns ? placeholders into $1, $2, ….
func numberPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
