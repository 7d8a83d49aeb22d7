package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// runIndex makes a workflow run belong to one build at most: (forge_host,
// repository, run_id). NULL run ids (builds without a run yet) never
// collide, on SQLite as on PostgreSQL.
const runIndex = "idx_builds_run"

// migrateRunIdentity creates the unique run index. Databases written before
// it may hold several builds with the same run id (a restarted demo
// simulator numbered its runs from the same start): in each such group the
// newest build keeps the run, the older ones forget it. An older build that
// is not terminal then goes through the engine's "run not known" path: it
// looks for its run by its display title, and fails with "no workflow run
// appeared" when there is none.
func migrateRunIdentity(ctx context.Context, db *DB) error {
	g := db.Gorm.WithContext(ctx)
	if g.Migrator().HasIndex(&Build{}, runIndex) {
		return nil
	}
	err := g.Transaction(func(tx *gorm.DB) error {
		type group struct {
			ForgeHost  string
			Repository string
			RunID      int64
		}
		var dups []group
		err := tx.Model(&Build{}).Select("forge_host, repository, run_id").
			Where("run_id IS NOT NULL").Group("forge_host, repository, run_id").Having("COUNT(*) > 1").
			Scan(&dups).Error
		if err != nil {
			return fmt.Errorf("find builds sharing a run: %w", err)
		}
		for _, d := range dups {
			var ids []string
			err := tx.Model(&Build{}).Where("forge_host = ? AND repository = ? AND run_id = ?", d.ForgeHost, d.Repository, d.RunID).
				Order("created_at DESC, id DESC").Pluck("id", &ids).Error
			if err != nil {
				return fmt.Errorf("list builds of run %d: %w", d.RunID, err)
			}
			older := ids[1:]
			err = tx.Model(&Build{}).Where("id IN ?", older).
				Updates(map[string]any{"run_id": nil, "job_id": nil}).Error
			if err != nil {
				return fmt.Errorf("detach run %d from older builds: %w", d.RunID, err)
			}
			err = tx.Model(&Build{}).Where("id IN ? AND status IN ?", older, []string{StatusQueued, StatusBuilding}).
				Updates(map[string]any{"run_status": "", "run_conclusion": "", "step_log_mark": 0}).Error
			if err != nil {
				return fmt.Errorf("detach run %d from older builds: %w", d.RunID, err)
			}
		}
		return tx.Exec("CREATE UNIQUE INDEX " + runIndex + " ON builds (forge_host, repository, run_id)").Error
	})
	if err != nil {
		return fmt.Errorf("migrate run identity: %w", err)
	}
	return nil
}
