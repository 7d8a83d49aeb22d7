package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"
)

// Jobs inserts River jobs inside the transaction of a Store.Tx, so that a
// job exists if and only if the rows that call for it were committed. It
// is an insert-only River client (it runs no job): on PostgreSQL River's
// pgx v5 driver on the transaction's pgx.Tx, which sends River's array
// parameters in binary where database/sql would turn them into text and
// back (BENCHMARKS.md, "River's driver on PostgreSQL"); on SQLite
// riversqlite on the *sql.Tx. River's insert-time NOTIFY and its unique
// jobs work as with any River client. It is safe for concurrent use.
type Jobs struct {
	pg   *river.Client[pgx.Tx]
	lite *river.Client[*sql.Tx]
}

// newJobs returns the job inserter of db.
func newJobs(db *DB) (*Jobs, error) {
	if db.pgPool != nil {
		c, err := river.NewClient[pgx.Tx](riverpgxv5.New(db.pgPool), &river.Config{})
		if err != nil {
			return nil, fmt.Errorf("create river job inserter: %w", err)
		}
		return &Jobs{pg: c}, nil
	}
	c, err := river.NewClient[*sql.Tx](riversqlite.New(db.SQL), &river.Config{})
	if err != nil {
		return nil, fmt.Errorf("create river job inserter: %w", err)
	}
	return &Jobs{lite: c}, nil
}

// InsertTx inserts one job inside tx, a transaction of Store.Tx. A unique
// job that already exists is not inserted again (the result says so).
func (j *Jobs) InsertTx(ctx context.Context, tx *gorm.DB, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	switch conn := tx.Statement.ConnPool.(type) {
	case *pgTxConn:
		if j.pg != nil {
			var res *rivertype.JobInsertResult
			err := conn.onConn(func() (err error) {
				res, err = j.pg.InsertTx(ctx, conn.tx, args, opts)
				return err
			})
			return res, err
		}
	case *sql.Tx:
		if j.lite != nil {
			return j.lite.InsertTx(ctx, conn, args, opts)
		}
	}
	return nil, errNotStoreTx
}

// InsertManyTx inserts jobs inside tx, a transaction of Store.Tx, in one
// statement, without reading them back. Unique jobs that already exist are
// skipped, as by InsertTx.
func (j *Jobs) InsertManyTx(ctx context.Context, tx *gorm.DB, params []river.InsertManyParams) error {
	var err error
	switch conn := tx.Statement.ConnPool.(type) {
	case *pgTxConn:
		if j.pg == nil {
			return errNotStoreTx
		}
		// Not InsertManyFastTx: with pgx it is a COPY, which fails on a
		// unique job that exists and costs a round trip more than this
		// one INSERT for the few jobs inserted here.
		err = conn.onConn(func() error {
			_, err := j.pg.InsertManyTx(ctx, conn.tx, params)
			return err
		})
	case *sql.Tx:
		if j.lite == nil {
			return errNotStoreTx
		}
		_, err = j.lite.InsertManyFastTx(ctx, conn, params)
	default:
		return errNotStoreTx
	}
	return err
}

var errNotStoreTx = errors.New("insert river jobs: the transaction was not begun by Store.Tx on this database")

// pgTxConn is what GORM runs a PostgreSQL transaction of Store.Tx on: a
// connection held out of the pool, on which the transaction was begun with
// pgx so that River's pgx driver inserts jobs in it. GORM's statements go
// through database/sql on the same connection, hence in the same
// transaction. Commit and Rollback make GORM see a transaction: a nested
// tx.Transaction uses a savepoint.
type pgTxConn struct {
	conn *sql.Conn
	tx   pgx.Tx
}

// PrepareContext implements gorm.ConnPool.
func (c *pgTxConn) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.conn.PrepareContext(ctx, query)
}

// ExecContext implements gorm.ConnPool.
func (c *pgTxConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.conn.ExecContext(ctx, query, args...)
}

// QueryContext implements gorm.ConnPool.
func (c *pgTxConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext implements gorm.ConnPool.
func (c *pgTxConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.conn.QueryRowContext(ctx, query, args...)
}

// Commit implements gorm.TxCommitter.
func (c *pgTxConn) Commit() error {
	return c.onConn(func() error { return c.tx.Commit(context.Background()) })
}

// Rollback implements gorm.TxCommitter.
func (c *pgTxConn) Rollback() error {
	return c.onConn(func() error { return c.tx.Rollback(context.Background()) })
}

// onConn runs fn, which uses the transaction through pgx, under
// database/sql's lock of the connection (Raw), as database/sql's own
// statements run: database/sql may close the connection from another
// goroutine (the pool closing, a context cancelled), and pgx's connection
// must not be used at the same time. GORM's statements cannot run inside
// (they take that lock themselves), so each pgx step takes it on its own.
func (c *pgTxConn) onConn(fn func() error) error {
	return c.conn.Raw(func(any) error { return fn() })
}

// pgTransaction runs fn in one PostgreSQL transaction begun with pgx on a
// connection of db.SQL, committed when fn returns nil and rolled back
// otherwise (or if fn panics).
func (db *DB) pgTransaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// Closing returns the connection to the pool, which discards it if a
	// transaction is still open on it.
	defer conn.Close()
	var ptx pgx.Tx
	if err := conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is a %T, not pgx's", driverConn)
		}
		ptx, err = c.Conn().Begin(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	pc := &pgTxConn{conn: conn, tx: ptx}
	committed := false
	defer func() {
		if !committed {
			_ = pc.Rollback() // the error that led here says more
		}
	}()
	tx := db.Gorm.Session(&gorm.Session{Context: ctx})
	tx.Statement.ConnPool = pc
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	if err := pc.onConn(func() error { return ptx.Commit(ctx) }); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
