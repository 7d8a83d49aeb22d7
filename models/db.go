package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialects of the databases DeskForge runs on.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// DB is an open database: one pool shared by GORM and River.
type DB struct {
	Gorm    *gorm.DB
	SQL     *sql.DB
	Dialect string
	pgPool  *pgxpool.Pool
	// readers are SQLite's connections for the hot reads (nil on
	// PostgreSQL): SQL has one connection, the writer's.
	readers *sql.DB
	outbox  *Outbox
	jobs    *Jobs
}

// Open connects to the database named by rawURL: "sqlite://path/to/file.db"
// (embedded, pure Go) or "postgres://…" / "postgresql://…".
func Open(ctx context.Context, rawURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		return openSQLite(strings.TrimPrefix(rawURL, "sqlite://"))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL)
	}
	return nil, fmt.Errorf("database url %q: must start with sqlite:// or postgres://", redactURL(rawURL))
}

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("database url sqlite://: the file path is empty (e.g. sqlite://deskforge.db)")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory %s: %w", dir, err)
		}
	}
	if err := checkWritable(path); err != nil {
		return nil, err
	}
	// cache_size (64 MiB) and mmap_size keep reads of a large builds table
	// off read(2): about +40 % requests/s on GET /builds/:id (BENCHMARKS.md).
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)&_txlock=immediate"
	sqlDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// SQLite allows one writer at a time; River recommends a single
	// connection so its concurrent operations never see SQLITE_BUSY. Code
	// must therefore never hold a cursor open while doing other work.
	sqlDB.SetMaxOpenConns(1)
	gdb, err := gorm.Open(sqlite.Dialector{Conn: sqlDB}, gormConfig()) // connects: the file is in WAL mode from here on
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// The API's hot reads get connections of their own: in WAL mode
	// readers neither wait for the writer nor block it, so reads run on
	// every core instead of queueing behind each other and behind every
	// write transaction on the one connection. query_only makes them
	// refuse writes; each keeps a smaller page cache (the file is mapped).
	readers, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)"+
		"&_pragma=cache_size(-16384)&_pragma=mmap_size(268435456)")
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	readers.SetMaxOpenConns(sqliteReaders)
	readers.SetMaxIdleConns(sqliteReaders)
	return attach(&DB{Gorm: gdb, SQL: sqlDB, Dialect: DialectSQLite, readers: readers})
}

// sqliteReaders is how many connections SQLite's hot reads share.
var sqliteReaders = max(2, runtime.GOMAXPROCS(0))

// ErrNotWritable means the SQLite database cannot be written where it is
// configured: SQLite itself would report it as "out of memory (14)".
var ErrNotWritable = errors.New("not writable")

// checkWritable checks that SQLite can write the database at path: its
// directory (which also holds the -wal and -shm files) and the file itself
// when it exists.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	probe, err := os.CreateTemp(dir, ".deskforge-write-check-*")
	if err != nil {
		return fmt.Errorf("sqlite database %s: directory %s is %w (%v); SQLite creates the database and its -wal and -shm files there",
			path, dir, ErrNotWritable, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil { //nolint:gosec // G304: the database file the operator configured
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite database %s: the file is %w (%v)", path, ErrNotWritable, errors.Unwrap(err))
	}
	return nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	pool, err := pgxpool.New(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(rawURL), err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gormConfig())
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(rawURL), err)
	}
	return attach(&DB{Gorm: gdb, SQL: sqlDB, Dialect: DialectPostgres, pgPool: pool})
}

// attach gives db its events outbox and its job inserter.
func attach(db *DB) (*DB, error) {
	db, err := attachOutbox(db)
	if err != nil {
		return nil, err
	}
	if db.jobs, err = newJobs(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func gormConfig() *gorm.Config {
	return &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         true,
	}
}

// RiverDriver returns the River driver for this database, sharing its pool:
// the one River's workers and migrations use. Jobs are inserted with Jobs.
func (db *DB) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if db.Dialect == DialectPostgres {
		return riverdatabasesql.NewWithPgxListener(db.SQL, db.pgPool)
	}
	return riversqlite.New(db.SQL)
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.outbox.notifier.close()
	err := db.SQL.Close()
	if db.readers != nil {
		err = errors.Join(err, db.readers.Close())
	}
	if db.pgPool != nil {
		db.pgPool.Close()
	}
	return err
}

// Migrate brings the schema up to date: River's migrations, then GORM's for
// DeskForge's models. Running it again changes nothing.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	migrator, err := rivermigrate.New(db.RiverDriver(), &rivermigrate.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range res.Versions {
		log.Info("applied river migration", "version", v.Version, "name", v.Name)
	}
	if err := db.Gorm.WithContext(ctx).AutoMigrate(All()...); err != nil {
		return fmt.Errorf("migrate models: %w", err)
	}
	if err := migrateBuildCounts(ctx, db); err != nil {
		return err
	}
	if err := migrateRunIdentity(ctx, db); err != nil {
		return err
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
