package models

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Release is one version of a project built for a set of targets: one build
// per target (Build.ReleaseID), created in one transaction. Its status is
// derived from its targets' current builds (the newest build of each
// target) whenever one of them changes status (SyncReleaseTx); it is
// published once, after every target succeeded.
type Release struct {
	// ID is rel_<ulid>; (project_id, id) serves keyset pagination.
	ID        string `gorm:"primaryKey;size:40;index:idx_releases_project,priority:2"`
	ProjectID string `gorm:"size:40;not null;index:idx_releases_project,priority:1;index:idx_releases_version,priority:1"`
	Version   string `gorm:"size:100;not null;index:idx_releases_version,priority:2"`
	// Targets is the comma-separated list of "platform/arch".
	Targets     string `gorm:"size:200;not null"`
	Notes       string `gorm:"type:text"`
	Status      string `gorm:"size:16;not null"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time
	// PublishedAt is set once the GitHub release was published; the
	// version is then immutable.
	PublishedAt *time.Time `gorm:"index"`
	// ReleaseURL is the published GitHub release's web page.
	ReleaseURL string `gorm:"size:1024"`
}

// ReleaseTransition records one status change of a release.
type ReleaseTransition struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	ReleaseID  string `gorm:"size:40;not null;index"`
	FromStatus string `gorm:"size:16"`
	ToStatus   string `gorm:"size:16;not null"`
	Reason     string `gorm:"type:text"`
	At         time.Time
}

// TargetList returns the release's targets ("platform/arch"), in order.
func (r Release) TargetList() []string {
	if r.Targets == "" {
		return nil
	}
	return strings.Split(r.Targets, ",")
}

// PublishReleaseArgs is the River job that publishes a release whose
// targets all succeeded (worker: package workflows). It is inserted in the
// transaction that moves the release to success, unique by release.
type PublishReleaseArgs struct {
	ReleaseID string `json:"release_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (PublishReleaseArgs) Kind() string { return "publish_release" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (PublishReleaseArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// releaseEventTypes maps a release status to the event of entering it.
var releaseEventTypes = map[string]string{
	StatusQueued:    EventReleaseQueued,
	StatusBuilding:  EventReleaseBuilding,
	StatusSuccess:   EventReleaseSucceeded,
	StatusFailed:    EventReleaseFailed,
	StatusCancelled: EventReleaseCancelled,
}

// ReleaseRenderer is implemented by a Renderer that also renders releases
// (GET /releases/:id's body); without it, events carry the row.
type ReleaseRenderer interface {
	RenderRelease(r Release, builds []Build) any
}

// CreateReleaseTx inserts a queued release inside tx and records its
// "queued" transition and event. Its builds are inserted by the caller in
// the same transaction, before or after.
func CreateReleaseTx(ctx context.Context, tx *gorm.DB, r *Release) error {
	if err := tx.WithContext(ctx).Create(r).Error; err != nil {
		return translate(err, "create release "+r.ID)
	}
	return recordReleaseTransitionTx(ctx, tx, *r, "", r.Status, "release created", r.CreatedAt)
}

func recordReleaseTransitionTx(ctx context.Context, tx *gorm.DB, r Release, from, to, reason string, at time.Time) error {
	t := ReleaseTransition{ReleaseID: r.ID, FromStatus: from, ToStatus: to, Reason: reason, At: at.UTC()}
	if err := tx.WithContext(ctx).Create(&t).Error; err != nil {
		return fmt.Errorf("record transition of release %s to %s: %w", r.ID, to, err)
	}
	slog.InfoContext(ctx, "release status", "release_id", r.ID, "project_id", r.ProjectID,
		"version", r.Version, "from", from, "to", to, "reason", reason)
	return RecordReleaseEventTx(ctx, tx, releaseEventTypes[to], r.ID)
}

// RecordReleaseEventTx records the event typ about release id, its data
// the release as the API shows it, read inside tx.
func RecordReleaseEventTx(ctx context.Context, tx *gorm.DB, typ, id string) error {
	o, err := outboxOf(tx)
	if err != nil {
		return err
	}
	var r Release
	if err := tx.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return translate(err, "record event of release "+id)
	}
	var data any = r
	if rr, ok := o.render().(ReleaseRenderer); ok {
		builds, err := releaseBuildsTx(ctx, tx, id)
		if err != nil {
			return err
		}
		data = rr.RenderRelease(r, builds)
	}
	_, err = RecordEventTx(ctx, tx, NewEvent{
		Type: typ, ResourceKind: ResourceRelease, ResourceID: r.ID, ProjectID: r.ProjectID, Data: data,
	})
	return err
}

// releaseBuildsTx returns every build of a release, oldest first.
func releaseBuildsTx(ctx context.Context, tx *gorm.DB, id string) ([]Build, error) {
	var bs []Build
	if err := tx.WithContext(ctx).Where("release_id = ?", id).Order("id").Find(&bs).Error; err != nil {
		return nil, fmt.Errorf("builds of release %s: %w", id, err)
	}
	return bs, nil
}

// CurrentBuilds returns the newest build of each target among builds (a
// retry supersedes the target's earlier build), ordered by target.
func CurrentBuilds(builds []Build) []Build {
	latest := map[string]Build{}
	for _, b := range builds {
		k := b.Platform + "/" + b.Arch
		if cur, ok := latest[k]; !ok || b.ID > cur.ID {
			latest[k] = b
		}
	}
	out := make([]Build, 0, len(latest))
	for _, b := range latest {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Build) int {
		return cmp.Or(cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.Arch, b.Arch))
	})
	return out
}

// DeriveReleaseStatus is the status of a release whose targets' current
// builds are current: queued while none started, building while any is not
// terminal, then failed if any failed, cancelled if any was cancelled, else
// success.
func DeriveReleaseStatus(current []Build) string {
	var running, started, failed, cancelled int
	for _, b := range current {
		switch b.Status {
		case StatusQueued:
			running++
			if b.RetryOf != nil { // a retried release is building again
				started++
			}
		case StatusBuilding:
			running++
			started++
		case StatusSuccess:
			started++
		case StatusFailed:
			failed++
		case StatusCancelled:
			cancelled++
		}
	}
	switch {
	case running > 0 && started+failed+cancelled == 0:
		return StatusQueued
	case running > 0:
		return StatusBuilding
	case failed > 0:
		return StatusFailed
	case cancelled > 0:
		return StatusCancelled
	}
	return StatusSuccess
}

// syncReleaseOfBuildTx runs SyncReleaseTx for the release of build id, if
// it has one.
func syncReleaseOfBuildTx(ctx context.Context, tx *gorm.DB, buildID string, now time.Time) error {
	var row struct{ ReleaseID *string }
	if err := tx.WithContext(ctx).Model(&Build{}).Select("release_id").Where("id = ?", buildID).Take(&row).Error; err != nil {
		return translate(err, "release of build "+buildID)
	}
	if row.ReleaseID == nil {
		return nil
	}
	_, err := SyncReleaseTx(ctx, tx, *row.ReleaseID, now)
	return err
}

// SyncReleaseTx derives a release's status from its builds inside tx and,
// when it changed, stores it with a transition, its event and log line. A
// release entering success gets its publication job (PublishReleaseArgs),
// in the same transaction. A successful release never changes again. It
// returns the release as stored.
func SyncReleaseTx(ctx context.Context, tx *gorm.DB, id string, now time.Time) (Release, error) {
	var r Release
	q := tx.WithContext(ctx)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Where("id = ?", id).Take(&r).Error; err != nil {
		return r, translate(err, "lock release "+id)
	}
	if r.Status == StatusSuccess {
		return r, nil
	}
	builds, err := releaseBuildsTx(ctx, tx, id)
	if err != nil {
		return r, err
	}
	to := DeriveReleaseStatus(CurrentBuilds(builds))
	if to == r.Status {
		return r, nil
	}
	fields := map[string]any{"status": to, "updated_at": now.UTC(), "completed_at": nil}
	if IsTerminal(to) {
		fields["completed_at"] = now.UTC()
	}
	if err := tx.WithContext(ctx).Model(&Release{}).Where("id = ?", id).Updates(fields).Error; err != nil {
		return r, fmt.Errorf("move release %s to %s: %w", id, to, err)
	}
	from := r.Status
	r.Status, r.UpdatedAt = to, now.UTC()
	if err := recordReleaseTransitionTx(ctx, tx, r, from, to, "its builds' statuses changed", now); err != nil {
		return r, err
	}
	if to == StatusSuccess {
		o, err := outboxOf(tx)
		if err != nil {
			return r, err
		}
		if err := o.db.jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{{Args: PublishReleaseArgs{ReleaseID: id}}}); err != nil {
			return r, fmt.Errorf("insert publication job of release %s: %w", id, err)
		}
	}
	return r, nil
}

// GetRelease reads one release; ErrNotFound when it does not exist.
func (s *Store) GetRelease(ctx context.Context, id string) (Release, error) {
	var r Release
	err := s.Gorm(ctx).Where("id = ?", id).Take(&r).Error
	return r, translate(err, "get release "+id)
}

// ReleaseBuilds returns every build of a release (retries included),
// oldest first.
func (s *Store) ReleaseBuilds(ctx context.Context, id string) ([]Build, error) {
	return releaseBuildsTx(ctx, s.Gorm(ctx), id)
}

// ListReleases returns a page of a project's releases, newest first, by
// keyset (id < cursor), and the cursor of the next page ("" on the last).
func (s *Store) ListReleases(ctx context.Context, projectID, cursor string, limit int) ([]Release, string, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("list releases: limit %d: %w", limit, ErrInvalid)
	}
	q := s.Gorm(ctx).Where("project_id = ?", projectID)
	if cursor != "" {
		q = q.Where("id < ?", cursor)
	}
	var rs []Release
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rs).Error; err != nil {
		return nil, "", fmt.Errorf("list releases of %s: %w", projectID, err)
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		next = rs[len(rs)-1].ID
	}
	return rs, next, nil
}

// CountReleases counts a project's releases.
func (s *Store) CountReleases(ctx context.Context, projectID string) (int64, error) {
	var n int64
	if err := s.Gorm(ctx).Model(&Release{}).Where("project_id = ?", projectID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count releases of %s: %w", projectID, err)
	}
	return n, nil
}

// VersionPublished reports whether a release of this project and version
// was published (the version is then immutable). Pass a transaction or the
// store's handle as db.
func VersionPublished(ctx context.Context, db *gorm.DB, projectID, version string) (bool, error) {
	var n int64
	err := db.WithContext(ctx).Model(&Release{}).
		Where("project_id = ? AND version = ? AND published_at IS NOT NULL", projectID, version).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("is %s %s published: %w", projectID, version, err)
	}
	return n > 0, nil
}

// ErrVersionPublished is the conflict of building a published version.
func ErrVersionPublished(version string) error {
	return Conflict("version_published",
		"version %s is published and immutable: bump the version to build it again", version)
}

// MarkReleasePublishedTx records that a release was published on GitHub
// (once: it returns false when it already was) and records its
// release.published event.
func MarkReleasePublishedTx(ctx context.Context, tx *gorm.DB, id, htmlURL string, now time.Time) (bool, error) {
	res := tx.WithContext(ctx).Model(&Release{}).Where("id = ? AND published_at IS NULL", id).
		Updates(map[string]any{"published_at": now.UTC(), "release_url": htmlURL, "updated_at": now.UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("mark release %s published: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	return true, RecordReleaseEventTx(ctx, tx, EventReleasePublished, id)
}
