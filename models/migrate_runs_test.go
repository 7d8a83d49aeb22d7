package models_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

func runBuild(id, host, repo string, runID int64, status string, created time.Time) models.Build {
	b := models.Build{ID: id, ProjectID: "proj_a", Version: "1.0.0", Platform: "mac", Arch: "x64", Status: status,
		CreatedAt: created, UpdatedAt: created, Repository: repo, ForgeHost: host}
	if runID != 0 {
		b.RunID = &runID
	}
	return b
}

// TestRunIdentityMigrationOnExistingDatabase: a database written before the
// run index, holding builds that share a run id (a restarted simulator
// reused it), migrates; the newest build keeps the run, the older ones
// forget it, and from then on a run id is unique per host and repository.
func TestRunIdentityMigrationOnExistingDatabase(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			// The database as an older DeskForge left it.
			require.NoError(t, db.Gorm.Exec("DROP INDEX idx_builds_run").Error)
			t0 := time.Now().UTC().Truncate(time.Second)
			old := runBuild("build_01old", "", "acme/builder", 9100000000, models.StatusSuccess, t0)
			stuck := runBuild("build_02stuck", "", "acme/builder", 9100000001, models.StatusBuilding, t0.Add(time.Second))
			stuck.RunConclusion, stuck.RunStatus = "failure", "completed"
			newer := runBuild("build_03new", "", "acme/builder", 9100000000, models.StatusBuilding, t0.Add(time.Hour))
			newer2 := runBuild("build_04new", "", "acme/builder", 9100000001, models.StatusQueued, t0.Add(time.Hour))
			other := runBuild("build_05other", "", "acme/other", 9100000000, models.StatusSuccess, t0)
			for _, b := range []models.Build{old, stuck, newer, newer2, other} {
				require.NoError(t, db.Gorm.Create(&b).Error)
			}

			require.NoError(t, db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))))

			load := func(id string) models.Build {
				b, err := store.LoadBuild(ctx, id)
				require.NoError(t, err)
				return b
			}
			require.Nil(t, load(old.ID).RunID, "the older build forgets the reused run")
			require.Equal(t, models.StatusSuccess, load(old.ID).Status, "a finished build stays as it was")
			s := load(stuck.ID)
			require.Nil(t, s.RunID)
			require.Empty(t, s.RunConclusion, "an unfinished build does not keep another run's outcome")
			require.Equal(t, int64(9100000000), *load(newer.ID).RunID)
			require.Equal(t, int64(9100000001), *load(newer2.ID).RunID)
			require.Equal(t, int64(9100000000), *load(other.ID).RunID, "same id in another repository is another run")

			lock := func(ref models.RunRef) (models.Build, error) {
				var b models.Build
				err := store.Tx(ctx, func(tx *gorm.DB) error {
					var err error
					b, err = store.LockBuildByRunTx(ctx, tx, ref)
					return err
				})
				return b, err
			}
			b, err := lock(models.RunRef{Host: "api.github.com", Repo: "ACME/builder", ID: 9100000000})
			require.NoError(t, err, "a build from before the forge host column is found by any host")
			require.Equal(t, newer.ID, b.ID)

			// New builds record their host: same id, other host = other run.
			mine := runBuild("build_06mine", "ghsim-a", "acme/app", 42, models.StatusQueued, t0)
			theirs := runBuild("build_07theirs", "ghsim-b", "acme/app", 42, models.StatusQueued, t0)
			require.NoError(t, db.Gorm.Create(&mine).Error)
			require.NoError(t, db.Gorm.Create(&theirs).Error)
			b, err = lock(models.RunRef{Host: "ghsim-b", Repo: "acme/app", ID: 42})
			require.NoError(t, err)
			require.Equal(t, theirs.ID, b.ID)
			_, err = lock(models.RunRef{Host: "ghsim-c", Repo: "acme/app", ID: 42})
			require.ErrorIs(t, err, models.ErrNotFound)
			_, err = lock(models.RunRef{Host: "ghsim-a", Repo: "acme/other-app", ID: 42})
			require.ErrorIs(t, err, models.ErrNotFound, "never matched on the run id alone")

			dup := runBuild("build_08dup", "ghsim-a", "acme/app", 42, models.StatusQueued, t0)
			err = store.Tx(ctx, func(tx *gorm.DB) error { return models.CreateBuildTx(ctx, tx, &dup) })
			require.ErrorIs(t, err, models.ErrConflict, "a run belongs to one build")
		})
	}
}
