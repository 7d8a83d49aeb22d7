package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The build engine's store methods. Methods ending in Tx run inside a
// caller's transaction (Store.Tx) and must be given that transaction.

// LoadBuild reads one build (no locking).
func (s *Store) LoadBuild(ctx context.Context, id string) (Build, error) {
	var b Build
	err := s.Gorm(ctx).Where("id = ?", id).Take(&b).Error
	return b, translate(err, "load build "+id)
}

// LockBuildTx reads a build inside tx and holds it until tx ends: SELECT …
// FOR UPDATE on PostgreSQL; SQLite's immediate transactions already hold the
// database's write lock.
func (s *Store) LockBuildTx(ctx context.Context, tx *gorm.DB, id string) (Build, error) {
	var b Build
	err := s.locking(tx.WithContext(ctx)).Where("id = ?", id).Take(&b).Error
	return b, translate(err, "lock build "+id)
}

// BuildForgeHostTx reads, inside tx, the GitHub server build id was
// created for (Build.ForgeHost); "" for a build that no longer exists.
func BuildForgeHostTx(ctx context.Context, tx *gorm.DB, id string) (string, error) {
	var hosts []string
	if err := tx.WithContext(ctx).Model(&Build{}).Where("id = ?", id).Pluck("forge_host", &hosts).Error; err != nil {
		return "", fmt.Errorf("forge host of build %s: %w", id, err)
	}
	if len(hosts) == 0 {
		return "", nil
	}
	return hosts[0], nil
}

// RunRef identifies a workflow run: run ids are unique per GitHub server
// only (and a restarted simulator may hand out an id again), so a run is
// named by its server, its repository and its id.
type RunRef struct {
	Host string // the GitHub server's API host, as in Build.ForgeHost
	Repo string // "owner/name", compared without regard to case
	ID   int64
}

func (r RunRef) String() string {
	return fmt.Sprintf("run %d of %s on %s", r.ID, r.Repo, r.Host)
}

// LockBuildByRunTx reads and locks the build whose workflow run is ref: same
// run id, same repository, and same forge host (or a build older than the
// forge_host column, which has none). ErrNotFound when no build has it.
func (s *Store) LockBuildByRunTx(ctx context.Context, tx *gorm.DB, ref RunRef) (Build, error) {
	var b Build
	err := s.locking(tx.WithContext(ctx)).
		Where("run_id = ? AND LOWER(repository) = LOWER(?) AND forge_host IN (?, '')", ref.ID, ref.Repo, ref.Host).
		Order("forge_host DESC").Take(&b).Error
	return b, translate(err, "lock build of "+ref.String())
}

func (s *Store) locking(q *gorm.DB) *gorm.DB {
	if s.db.Dialect == DialectPostgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}

// UpdateBuildTx sets fields (column name → value) on a build and its
// updated_at to now.
func UpdateBuildTx(ctx context.Context, tx *gorm.DB, id string, now time.Time, fields map[string]any) error {
	fields["updated_at"] = now.UTC()
	res := tx.WithContext(ctx).Model(&Build{}).Where("id = ?", id).Updates(fields)
	if res.Error != nil {
		return fmt.Errorf("update build %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update build %s: %w", id, ErrNotFound)
	}
	return nil
}

// Transition is one status change of a build.
type Transition struct {
	To      string         // the new status
	Reason  string         // why, stored with the transition ("" for none)
	At      time.Time      // when it happened
	Level   string         // level of the log entry recording it
	Message string         // the log entry's message
	Fields  map[string]any // other columns set in the same UPDATE
}

// TransitionBuildTx moves b from its current status to t.To inside tx, only
// if the row still has b.Status and the move is forward (StatusRank grows):
// a duplicate or late change does nothing and returns false. A change stores
// one BuildTransition row and one log entry, and updates b in memory.
func TransitionBuildTx(ctx context.Context, tx *gorm.DB, b *Build, t Transition, now time.Time) (bool, error) {
	if StatusRank(t.To) <= StatusRank(b.Status) {
		return false, nil
	}
	fields := map[string]any{}
	for k, v := range t.Fields {
		fields[k] = v
	}
	fields["status"] = t.To
	fields["updated_at"] = now.UTC()
	res := tx.WithContext(ctx).Model(&Build{}).Where("id = ? AND status = ?", b.ID, b.Status).Updates(fields)
	if res.Error != nil {
		return false, fmt.Errorf("move build %s from %s to %s: %w", b.ID, b.Status, t.To, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	if err := RecordTransitionTx(ctx, tx, b.ID, b.Status, t.To, t.Reason, t.At, t.Level, t.Message); err != nil {
		return false, err
	}
	b.Status = t.To
	b.UpdatedAt = now.UTC()
	// A release's status follows its builds' (see SyncReleaseTx).
	if err := syncReleaseOfBuildTx(ctx, tx, b.ID, now); err != nil {
		return false, err
	}
	return true, nil
}

// StaleBuildIDs returns up to limit builds that are not terminal and were
// last updated before cutoff, least recently updated first.
func (s *Store) StaleBuildIDs(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.Gorm(ctx).Model(&Build{}).
		Where("status IN ? AND updated_at < ?", []string{StatusQueued, StatusBuilding}, cutoff.UTC()).
		Order("updated_at").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("list stale builds: %w", err)
	}
	return ids, nil
}

// BuildsAwaitingRun counts builds whose dispatch was attempted but whose
// workflow run is not known yet (a webhook may name a run before the
// dispatch is recorded).
func (s *Store) BuildsAwaitingRun(ctx context.Context) (int64, error) {
	var n int64
	err := s.Gorm(ctx).Model(&Build{}).
		Where("status IN ? AND dispatched_at IS NOT NULL AND run_id IS NULL", []string{StatusQueued, StatusBuilding}).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count builds awaiting a run: %w", err)
	}
	return n, nil
}

// MarkWebhookProcessedTx records when a delivery's event was applied.
func MarkWebhookProcessedTx(ctx context.Context, tx *gorm.DB, deliveryID string, at time.Time) error {
	err := tx.WithContext(ctx).Model(&WebhookDelivery{}).Where("delivery_id = ?", deliveryID).
		Update("processed_at", at.UTC()).Error
	if err != nil {
		return fmt.Errorf("mark webhook delivery %s processed: %w", deliveryID, err)
	}
	return nil
}

// GetSetting returns a persisted setting, or ErrNotFound.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var st Setting
	err := s.Gorm(ctx).Where("key = ?", key).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", fmt.Errorf("setting %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return st.Value, nil
}

// PutSetting stores (or replaces) a setting.
func (s *Store) PutSetting(ctx context.Context, key, value string, now time.Time) error {
	st := Setting{Key: key, Value: value, UpdatedAt: now.UTC()}
	err := s.Gorm(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "updated_at"}),
	}).Create(&st).Error
	if err != nil {
		return fmt.Errorf("put setting %s: %w", key, err)
	}
	return nil
}

// SupersedeBuildsTx marks the earlier successful builds whose artifact b's
// upload replaced (same asset name on the same repository and GitHub
// server, another asset) as superseded by b, and returns their ids.
func SupersedeBuildsTx(ctx context.Context, tx *gorm.DB, b Build, now time.Time) ([]string, error) {
	var ids []string
	q := tx.WithContext(ctx).Model(&Build{}).
		Where("artifact_name = ? AND LOWER(repository) = LOWER(?) AND forge_host IN (?, '') AND id <> ? AND status = ? AND superseded_by IS NULL",
			b.AssetName, b.Repository, b.ForgeHost, b.ID, StatusSuccess)
	if err := q.Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("find builds superseded by %s: %w", b.ID, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	err := tx.WithContext(ctx).Model(&Build{}).Where("id IN ?", ids).
		Updates(map[string]any{"superseded_by": b.ID, "updated_at": now.UTC()}).Error
	if err != nil {
		return nil, fmt.Errorf("mark builds superseded by %s: %w", b.ID, err)
	}
	return ids, nil
}

// LaterBuildOfAsset returns the newest build created after b with b's asset
// name on b's repository (a rebuild whose upload replaces b's asset), or
// ErrNotFound.
func (s *Store) LaterBuildOfAsset(ctx context.Context, b Build) (string, error) {
	var ids []string
	err := s.Gorm(ctx).Model(&Build{}).
		Where("asset_name = ? AND LOWER(repository) = LOWER(?) AND id > ? AND status <> ?", b.AssetName, b.Repository, b.ID, StatusCancelled).
		Order("id DESC").Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return "", fmt.Errorf("find a later build of asset %s: %w", b.AssetName, err)
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("later build of asset %s: %w", b.AssetName, ErrNotFound)
	}
	return ids[0], nil
}
