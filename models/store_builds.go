package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// IdempotencyWindow is how long an Idempotency-Key keeps returning the build
// it created.
const IdempotencyWindow = 24 * time.Hour

// reader is a handle for the API's hot reads, outside transactions: its
// statements are prepared once and cached (per connection), which spares
// SQLite a parse and its allocations on every request.
func (s *Store) reader(ctx context.Context) *gorm.DB {
	return s.Gorm(ctx).Session(&gorm.Session{PrepareStmt: true})
}

// GetBuild reads one build; ErrNotFound when it does not exist.
func (s *Store) GetBuild(ctx context.Context, id string) (Build, error) {
	var b Build
	err := s.reader(ctx).Where("id = ?", id).Take(&b).Error
	return b, translate(err, "get build "+id)
}

// apiColumns are the columns of a build that the API shows, in the order
// of scanAPIColumns; times holds the three timestamps' (sqliteTimes or
// postgresTimes).
func apiColumns(times string) string {
	return "id, project_id, version, platform, arch, status, retry_of, " + times + ", COALESCE(artifact_name, ''), artifact_size, " +
		"progress_step, progress_steps, progress_name, log_seq, COALESCE(failure_reason, ''), COALESCE(error_code, ''), COALESCE(error_step, '')"
}

// On SQLite the timestamps are read as text and parsed by parseStoredTime
// (textTime): the driver would parse them with time.Parse, trying a layout
// that never matches first, a tenth of the CPU of a page of builds.
const (
	sqliteTimes   = "CAST(created_at AS TEXT), CAST(started_at AS TEXT), CAST(completed_at AS TEXT)"
	postgresTimes = "created_at, started_at, completed_at"
)

// apiSelect is "SELECT <apiColumns> FROM builds" for this database.
func (s *Store) apiSelect() string {
	if s.db.Dialect == DialectPostgres {
		return "SELECT " + apiColumns(postgresTimes) + " FROM builds"
	}
	return "SELECT " + apiColumns(sqliteTimes) + " FROM builds"
}

// scanAPIColumns scans a row of apiSelect into b.
func (s *Store) scanAPIColumns(row interface{ Scan(dest ...any) error }, b *Build) error {
	var created, started, completed any = &b.CreatedAt, &b.StartedAt, &b.CompletedAt
	if s.db.Dialect != DialectPostgres {
		created, started, completed = textTime{&b.CreatedAt}, textTimePtr{&b.StartedAt}, textTimePtr{&b.CompletedAt}
	}
	return row.Scan(&b.ID, &b.ProjectID, &b.Version, &b.Platform, &b.Arch, &b.Status, &b.RetryOf,
		created, started, completed, &b.ArtifactName, &b.ArtifactSize,
		&b.ProgressStep, &b.ProgressSteps, &b.ProgressName, &b.LogSeq,
		&b.FailureReason, &b.ErrorCode, &b.ErrorStep)
}

// GetBuildSummary reads the API's view of a build: only ID, ProjectID,
// Version, Platform, Arch, Status, RetryOf, CreatedAt, StartedAt,
// CompletedAt, ArtifactName, ArtifactSize, the Progress fields, LogSeq,
// FailureReason, ErrorCode and ErrorStep are set. It is GET
// /builds/:id's hot path, one small query without GORM's reflection.
// ErrNotFound when the build does not exist.
func (s *Store) GetBuildSummary(ctx context.Context, id string) (Build, error) {
	var b Build
	err := s.db.getHot(ctx, s.apiSelect()+" WHERE id = ?", []any{id}, func(row hotRows) error {
		return s.scanAPIColumns(row, &b)
	})
	if err != nil {
		if errors.Is(err, errNoHotRow) {
			return Build{}, fmt.Errorf("get build %s: %w", id, ErrNotFound)
		}
		return Build{}, fmt.Errorf("get build %s: %w", id, err)
	}
	return b, nil
}

// bounded detaches a short, index-bounded query (a point lookup, one page)
// from its request's cancellation: both drivers start a goroutine per query
// to watch a cancellable context, which costs more than such a query can
// save by being interrupted.
func bounded(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// BuildFilter selects a project's builds for ListBuilds and CountBuilds.
// Empty fields do not filter.
type BuildFilter struct {
	// ProjectID selects one project's builds; "" selects every project's
	// (the admin-wide list).
	ProjectID string
	Status    string
	Platform  string
	Arch      string
	Version   string
	// Limit is the page size (ListBuilds only; at least 1).
	Limit int
	// Cursor is the id of the last build of the previous page (ListBuilds
	// only); "" = first page.
	Cursor string
}

// ListBuilds returns a page of a project's builds, newest first, by keyset
// (id < cursor, never OFFSET), and the cursor of the next page ("" when this
// is the last page). Builds created while a client pages get higher ids, so
// they never shift the pages that follow. Each single filter matches an index
// (project_id, <filter>, id), so a page is one index range scan however deep
// it is. Like GetBuildSummary, it reads only the columns the API shows.
func (s *Store) ListBuilds(ctx context.Context, f BuildFilter) ([]Build, string, error) {
	if f.Limit < 1 {
		return nil, "", fmt.Errorf("list builds: limit %d: %w", f.Limit, ErrInvalid)
	}
	where, args := f.countWhere()
	if f.Cursor != "" {
		where += " AND id < ?"
		args = append(args, f.Cursor)
	}
	args = append(args, f.Limit+1)
	rows, err := s.db.queryHot(ctx, s.apiSelect()+" WHERE "+where+" ORDER BY id DESC LIMIT ?", args...)
	if err != nil {
		return nil, "", fmt.Errorf("list builds of %s: %w", f.ProjectID, err)
	}
	defer rows.Close()
	bs := make([]Build, 0, f.Limit+1)
	for rows.Next() {
		var b Build
		if err := s.scanAPIColumns(rows, &b); err != nil {
			return nil, "", fmt.Errorf("list builds of %s: %w", f.ProjectID, err)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list builds of %s: %w", f.ProjectID, err)
	}
	next := ""
	if len(bs) > f.Limit {
		bs = bs[:f.Limit]
		next = bs[len(bs)-1].ID
	}
	return bs, next, nil
}

// CountBuilds counts a project's builds matching f (Limit and Cursor are
// ignored), exactly, from the build_counts table the database keeps up to
// date (see store_counts.go): a sum over at most one row per status,
// platform, arch and version of the project.
func (s *Store) CountBuilds(ctx context.Context, f BuildFilter) (int64, error) {
	where, args := f.countWhere()
	var n int64
	err := s.db.getHot(ctx, "SELECT COALESCE(SUM(n), 0) FROM build_counts WHERE "+where, args, func(row hotRows) error {
		return row.Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count builds of %s: %w", f.ProjectID, err)
	}
	return n, nil
}

// CreateBuildTx inserts a build inside tx.
func CreateBuildTx(ctx context.Context, tx *gorm.DB, b *Build) error {
	return translate(tx.WithContext(ctx).Create(b).Error, "create build "+b.ID)
}

// FindIdempotencyKey returns the record of key for a project if it was
// created after notBefore; ErrNotFound otherwise.
func (s *Store) FindIdempotencyKey(ctx context.Context, projectID, key string, notBefore time.Time) (IdempotencyKey, error) {
	var k IdempotencyKey
	err := s.Gorm(ctx).Where("project_id = ? AND key = ? AND created_at >= ?", projectID, key, notBefore.UTC()).Take(&k).Error
	return k, translate(err, "find idempotency key")
}

// ClaimIdempotencyKeyTx records k inside tx, first removing an expired record
// of the same key (created before expiredBefore). When a live record exists
// (another request claimed the key first) it returns ErrConflict; on
// PostgreSQL the transaction is then aborted and must be rolled back.
func ClaimIdempotencyKeyTx(ctx context.Context, tx *gorm.DB, k IdempotencyKey, expiredBefore time.Time) error {
	tx = tx.WithContext(ctx)
	if err := tx.Where("project_id = ? AND key = ? AND created_at < ?", k.ProjectID, k.Key, expiredBefore.UTC()).
		Delete(&IdempotencyKey{}).Error; err != nil {
		return fmt.Errorf("claim idempotency key: remove expired: %w", err)
	}
	return translate(tx.Create(&k).Error, "claim idempotency key")
}

// PurgeIdempotencyKeys deletes idempotency records created before before and
// returns how many it deleted.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	res := s.Gorm(ctx).Where("created_at < ?", before.UTC()).Delete(&IdempotencyKey{})
	if res.Error != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// LogQuery selects a chunk of a build's log for ReadLog.
type LogQuery struct {
	BuildID string
	// After returns entries with a sequence number greater than it.
	After int64
	// Levels keeps only entries of these levels; nil keeps all.
	Levels []string
	// Limit is the chunk size (at least 1).
	Limit int
}

// ReadLog returns up to q.Limit log entries of a build in sequence order.
// The query is finished (its cursor closed) when it returns, so callers can
// stream a long log chunk by chunk without holding a connection.
func (s *Store) ReadLog(ctx context.Context, q LogQuery) ([]BuildLogEntry, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("read log of %s: limit %d: %w", q.BuildID, q.Limit, ErrInvalid)
	}
	db := s.reader(ctx).Where("build_id = ? AND seq > ?", q.BuildID, q.After)
	if q.Levels != nil {
		db = db.Where("level IN ?", q.Levels)
	}
	var entries []BuildLogEntry
	if err := db.Order("seq").Limit(q.Limit).Find(&entries).Error; err != nil {
		return nil, fmt.Errorf("read log of %s: %w", q.BuildID, err)
	}
	return entries, nil
}
