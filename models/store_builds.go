package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// The API's view of a build is read by one plain query (no GORM). On
// PostgreSQL pgx scans its 19 columns. On SQLite the driver's cost is per
// column and per row (it converts every value to an interface and looks up
// the declared type of every text column), so the columns whose values the
// code itself writes (ids, enums, timestamps, integers) arrive in one text
// column, packed by concat_ws with a unit separator (U+001F) and split by
// unpackAPIColumns; the free-text columns stay columns of their own. The
// timestamps are read as text and parsed by parseStoredTime: the driver
// would parse them with time.Parse, trying a layout that never matches
// first.
const (
	postgresAPIColumns = "id, project_id, version, platform, arch, status, retry_of, created_at, started_at, completed_at, " +
		"COALESCE(artifact_name, ''), artifact_size, progress_step, progress_steps, COALESCE(progress_name, ''), log_seq, " +
		"COALESCE(failure_reason, ''), COALESCE(error_code, ''), COALESCE(error_step, '')"
	sqliteAPIColumns = "concat_ws(char(31), id, project_id, platform, arch, status, COALESCE(retry_of, ''), created_at, " +
		"COALESCE(started_at, ''), COALESCE(completed_at, ''), COALESCE(artifact_size, ''), progress_step, progress_steps, log_seq), " +
		"version, COALESCE(artifact_name, ''), COALESCE(progress_name, ''), COALESCE(failure_reason, ''), COALESCE(error_code, ''), " +
		"COALESCE(error_step, '')"

	postgresAPISelect = "SELECT " + postgresAPIColumns + " FROM builds"
	sqliteAPISelect   = "SELECT " + sqliteAPIColumns + " FROM builds"
)

// apiSelect is "SELECT <the API's columns> FROM builds" for this database,
// read by scanAPIColumns.
func (s *Store) apiSelect() string {
	if s.db.Dialect == DialectPostgres {
		return postgresAPISelect
	}
	return sqliteAPISelect
}

// apiGetQuery is apiSelect for one build by id.
func (s *Store) apiGetQuery() string {
	if s.db.Dialect == DialectPostgres {
		return postgresAPISelect + " WHERE id = ?"
	}
	return sqliteAPISelect + " WHERE id = ?"
}

// scanAPIColumns scans a row of apiSelect into b.
func (s *Store) scanAPIColumns(row interface{ Scan(dest ...any) error }, b *Build) error {
	if s.db.Dialect == DialectPostgres {
		return row.Scan(&b.ID, &b.ProjectID, &b.Version, &b.Platform, &b.Arch, &b.Status, &b.RetryOf,
			&b.CreatedAt, &b.StartedAt, &b.CompletedAt, &b.ArtifactName, &b.ArtifactSize,
			&b.ProgressStep, &b.ProgressSteps, &b.ProgressName, &b.LogSeq,
			&b.FailureReason, &b.ErrorCode, &b.ErrorStep)
	}
	var packed string
	if err := row.Scan(&packed, &b.Version, &b.ArtifactName, &b.ProgressName, &b.FailureReason, &b.ErrorCode, &b.ErrorStep); err != nil {
		return err
	}
	return unpackAPIColumns(packed, b)
}

// apiFieldSeparator separates the packed columns of sqliteAPIColumns.
const apiFieldSeparator = "\x1f"

// unpackAPIColumns reads the first column of sqliteAPIColumns into b. The
// strings of b share packed's memory. A value holding the separator (which
// the code never writes in those columns) makes the field count wrong and
// is an error, never a shifted field.
func unpackAPIColumns(packed string, b *Build) error {
	var fields [13]string
	rest := packed
	for i := range len(fields) - 1 {
		var ok bool
		if fields[i], rest, ok = strings.Cut(rest, apiFieldSeparator); !ok {
			return fmt.Errorf("packed build columns: %d fields, want %d", i+1, len(fields))
		}
	}
	if strings.Contains(rest, apiFieldSeparator) {
		return fmt.Errorf("packed build columns: more than %d fields", len(fields))
	}
	fields[len(fields)-1] = rest
	b.ID, b.ProjectID, b.Platform, b.Arch, b.Status = fields[0], fields[1], fields[2], fields[3], fields[4]
	b.RetryOf = nil
	if retryOf := fields[5]; retryOf != "" {
		b.RetryOf = &retryOf
	}
	var err error
	if b.CreatedAt, err = parseStoredTime(fields[6]); err != nil {
		return fmt.Errorf("created_at: %w", err)
	}
	if b.StartedAt, err = parseStoredTimePtr(fields[7]); err != nil {
		return fmt.Errorf("started_at: %w", err)
	}
	if b.CompletedAt, err = parseStoredTimePtr(fields[8]); err != nil {
		return fmt.Errorf("completed_at: %w", err)
	}
	b.ArtifactSize = nil
	if fields[9] != "" {
		n, err := strconv.ParseInt(fields[9], 10, 64)
		if err != nil {
			return fmt.Errorf("artifact_size: %w", err)
		}
		b.ArtifactSize = &n
	}
	if b.ProgressStep, err = strconv.Atoi(fields[10]); err != nil {
		return fmt.Errorf("progress_step: %w", err)
	}
	if b.ProgressSteps, err = strconv.Atoi(fields[11]); err != nil {
		return fmt.Errorf("progress_steps: %w", err)
	}
	if b.LogSeq, err = strconv.ParseInt(fields[12], 10, 64); err != nil {
		return fmt.Errorf("log_seq: %w", err)
	}
	return nil
}

// GetBuildSummary reads the API's view of a build: only ID, ProjectID,
// Version, Platform, Arch, Status, RetryOf, CreatedAt, StartedAt,
// CompletedAt, ArtifactName, ArtifactSize, the Progress fields, LogSeq,
// FailureReason, ErrorCode and ErrorStep are set. It is GET
// /builds/:id's hot path, one small query without GORM's reflection.
// ErrNotFound when the build does not exist.
func (s *Store) GetBuildSummary(ctx context.Context, id string) (Build, error) {
	var b Build
	err := s.db.getHot(ctx, s.apiGetQuery(), []any{id}, func(row hotRows) error {
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
	var page BuildPage
	q, err := s.pageQuery(f, &page)
	if err != nil {
		return nil, "", err
	}
	if err := s.db.readHot(ctx, q); err != nil {
		return nil, "", fmt.Errorf("list builds of %s: %w", f.ProjectID, err)
	}
	return page.Builds, page.Next, nil
}

// BuildPage is a page of builds as GET /projects/:id/builds shows it.
type BuildPage struct {
	Builds []Build
	// Next is the cursor of the next page; "" on the last page.
	Next string
	// Total counts the builds matching the filter (CountBuilds).
	Total int64
	// ProjectExists is false when the filter names a project that does
	// not exist (then Builds is empty and Total 0).
	ProjectExists bool
}

// ReadBuildPage reads ListBuilds's page, CountBuilds's total and whether
// the filter's project exists, in two statements. On PostgreSQL they go
// in one pipelined batch: one round trip on one connection, where reading
// the project, the page and the count took three round trips on two.
func (s *Store) ReadBuildPage(ctx context.Context, f BuildFilter) (BuildPage, error) {
	var page BuildPage
	list, err := s.pageQuery(f, &page)
	if err != nil {
		return BuildPage{}, err
	}
	where, args := f.countWhere()
	count := hotQuery{
		query: "SELECT COALESCE(SUM(n), 0), TRUE FROM build_counts WHERE " + where,
		args:  args,
		read: func(rows hotRows) error {
			if !rows.Next() {
				return errNoHotRow
			}
			return rows.Scan(&page.Total, &page.ProjectExists)
		},
	}
	if f.ProjectID != "" {
		count.query = "SELECT COALESCE(SUM(n), 0), EXISTS (SELECT 1 FROM projects WHERE id = ?) FROM build_counts WHERE " + where
		count.args = append([]any{f.ProjectID}, args...)
	}
	if err := s.db.readHot(ctx, list, count); err != nil {
		return BuildPage{}, fmt.Errorf("read builds of %s: %w", f.ProjectID, err)
	}
	return page, nil
}

// pageQuery is the query of ListBuilds's page, read into page.Builds and
// page.Next.
func (s *Store) pageQuery(f BuildFilter, page *BuildPage) (hotQuery, error) {
	if f.Limit < 1 {
		return hotQuery{}, fmt.Errorf("list builds: limit %d: %w", f.Limit, ErrInvalid)
	}
	where, args := f.countWhere()
	if f.Cursor != "" {
		where += " AND id < ?"
		args = append(args, f.Cursor)
	}
	// SQLite parses a statement whose LIMIT is a parameter twice: once when
	// it is prepared, and again at its first step, once the parameter is
	// bound (a tenth of the CPU of a page). The limit is a validated
	// integer, so SQLite gets it written in the statement.
	limit := "?"
	if s.db.Dialect == DialectPostgres {
		args = append(args, f.Limit+1)
	} else {
		limit = strconv.Itoa(f.Limit + 1)
	}
	return hotQuery{
		query: s.apiSelect() + " WHERE " + where + " ORDER BY id DESC LIMIT " + limit,
		args:  args,
		read: func(rows hotRows) error {
			bs := make([]Build, 0, f.Limit+1)
			for rows.Next() {
				bs = append(bs, Build{})
				if err := s.scanAPIColumns(rows, &bs[len(bs)-1]); err != nil {
					return fmt.Errorf("scan: %w", err)
				}
			}
			if len(bs) > f.Limit {
				bs = bs[:f.Limit]
				page.Next = bs[len(bs)-1].ID
			}
			page.Builds = bs
			return nil
		},
	}, nil
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
