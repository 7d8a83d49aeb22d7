package models_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// requireCountsMatch compares CountBuilds with a COUNT(*) over builds for
// every filter combination.
func requireCountsMatch(t *testing.T, db *models.DB, store *models.Store, projects []string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range projects {
		for _, status := range []string{"", models.StatusQueued, models.StatusBuilding, models.StatusSuccess, models.StatusFailed} {
			for _, platform := range []string{"", "mac", "linux"} {
				for _, arch := range []string{"", "x64", "arm64"} {
					for _, version := range []string{"", "1.0.0", "2.0.0"} {
						f := models.BuildFilter{ProjectID: p, Status: status, Platform: platform, Arch: arch, Version: version}
						q := db.Gorm.Model(&models.Build{}).Where("project_id = ?", p)
						for col, v := range map[string]string{"status": status, "platform": platform, "arch": arch, "version": version} {
							if v != "" {
								q = q.Where(col+" = ?", v)
							}
						}
						var want int64
						require.NoError(t, q.Count(&want).Error)
						got, err := store.CountBuilds(ctx, f)
						require.NoError(t, err)
						require.Equal(t, want, got, "%+v", f)
					}
				}
			}
		}
	}
}

func TestCountBuildsFollowsEveryChange(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			rng := rand.New(rand.NewPCG(7, 11))
			projects := []string{"proj_a", "proj_b"}
			pick := func(values ...string) string { return values[rng.IntN(len(values))] }
			newBuild := func() models.Build {
				return models.Build{ID: models.NewID("build"), ProjectID: pick(projects...), Version: pick("1.0.0", "2.0.0"),
					Platform: pick("mac", "linux"), Arch: pick("x64", "arm64"), Status: models.StatusQueued}
			}

			var builds []models.Build
			for range 60 {
				builds = append(builds, newBuild())
			}
			require.NoError(t, db.Gorm.CreateInBatches(builds, 25).Error)
			one := newBuild()
			require.NoError(t, db.Gorm.Create(&one).Error)
			builds = append(builds, one)
			requireCountsMatch(t, db, store, projects)

			for i := range builds {
				switch rng.IntN(6) {
				case 0: // a status change through Update
					require.NoError(t, db.Gorm.Model(&models.Build{}).Where("id = ?", builds[i].ID).
						Update("status", pick(models.StatusBuilding, models.StatusSuccess, models.StatusFailed)).Error)
				case 1: // Save rewrites every column
					var b models.Build
					require.NoError(t, db.Gorm.Where("id = ?", builds[i].ID).Take(&b).Error)
					b.Status = models.StatusBuilding
					b.RunnerName = "runner"
					require.NoError(t, db.Gorm.Save(&b).Error)
				case 2: // columns that do not count
					require.NoError(t, db.Gorm.Model(&models.Build{}).Where("id = ?", builds[i].ID).
						Updates(map[string]any{"runner_name": "x", "log_seq": 3}).Error)
				case 3:
					require.NoError(t, db.Gorm.Model(&models.Build{}).Where("id = ?", builds[i].ID).
						Updates(map[string]any{"version": "2.0.0", "platform": "mac"}).Error)
				case 4:
					require.NoError(t, db.Gorm.Where("id = ?", builds[i].ID).Delete(&models.Build{}).Error)
				case 5: // a rolled back change leaves the counts alone
					err := store.Tx(ctx, func(tx *gorm.DB) error {
						require.NoError(t, tx.Model(&models.Build{}).Where("id = ?", builds[i].ID).Update("status", models.StatusFailed).Error)
						return fmt.Errorf("roll back")
					})
					require.Error(t, err)
				}
			}
			requireCountsMatch(t, db, store, projects)

			// A database whose counts table is lost is counted again on the
			// next migration.
			require.NoError(t, db.Gorm.Exec("DROP TABLE build_counts").Error)
			require.NoError(t, db.Migrate(ctx, discardLog()))
			requireCountsMatch(t, db, store, projects)
			require.NoError(t, db.Migrate(ctx, discardLog()), "migrating again changes nothing")
			requireCountsMatch(t, db, store, projects)
		})
	}
}

func TestReadLogChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, models.DialectSQLite)
	store := models.NewStore(db)
	b := models.Build{ID: models.NewID("build"), ProjectID: "proj_x", Version: "1.0.0", Platform: "mac", Arch: "x64", Status: models.StatusQueued}
	require.NoError(t, db.Gorm.Create(&b).Error)
	levels := []string{models.LevelDebug, models.LevelInfo, models.LevelWarning, models.LevelError, models.LevelSuccess}
	var lines []models.LogLine
	for i := range 25 {
		lines = append(lines, models.LogLine{Timestamp: time.Unix(int64(i), 0), Level: levels[i%5], Message: fmt.Sprint(i)})
	}
	require.NoError(t, store.Tx(ctx, func(tx *gorm.DB) error { return models.AppendLogTx(ctx, tx, b.ID, lines...) }))

	entries, err := store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, After: 10, Limit: 5})
	require.NoError(t, err)
	require.Len(t, entries, 5)
	require.Equal(t, int64(11), entries[0].Seq)
	require.Equal(t, "10", entries[0].Message)

	entries, err = store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, Levels: []string{models.LevelError}, Limit: 100})
	require.NoError(t, err)
	require.Len(t, entries, 5)
	for _, e := range entries {
		require.Equal(t, models.LevelError, e.Level)
	}
	_, err = store.ReadLog(ctx, models.LogQuery{BuildID: b.ID})
	require.ErrorIs(t, err, models.ErrInvalid)
}

func TestPurgeIdempotencyKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, models.DialectSQLite)
	store := models.NewStore(db)
	now := time.Now().UTC()
	for i, age := range []time.Duration{time.Hour, 25 * time.Hour, 48 * time.Hour} {
		require.NoError(t, store.Tx(ctx, func(tx *gorm.DB) error {
			return models.ClaimIdempotencyKeyTx(ctx, tx, models.IdempotencyKey{
				ProjectID: "proj_x", Key: fmt.Sprint(i), RequestHash: "h", BuildID: "b", CreatedAt: now.Add(-age),
			}, now.Add(-models.IdempotencyWindow))
		}))
	}
	n, err := store.PurgeIdempotencyKeys(ctx, now.Add(-models.IdempotencyWindow))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	_, err = store.FindIdempotencyKey(ctx, "proj_x", "0", now.Add(-models.IdempotencyWindow))
	require.NoError(t, err)
}

func TestAuthenticateAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, models.DialectSQLite)
	store := models.NewStore(db)
	k, plaintext, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "ops", Role: models.RoleAdmin})
	require.NoError(t, err)
	require.Nil(t, k.LastUsedAt)

	got, err := store.AuthenticateAPIKey(ctx, plaintext)
	require.NoError(t, err)
	require.Equal(t, k.ID, got.ID)
	require.NotNil(t, got.LastUsedAt)
	first := *got.LastUsedAt
	got, err = store.AuthenticateAPIKey(ctx, plaintext)
	require.NoError(t, err)
	require.Equal(t, first.Unix(), got.LastUsedAt.Unix(), "use is recorded at most once a minute")

	for _, bad := range []string{"", "df_", "nope", plaintext + "x", "DF_" + plaintext[3:]} {
		_, err := store.AuthenticateAPIKey(ctx, bad)
		require.ErrorIs(t, err, models.ErrNotFound, bad)
	}
	_, err = store.RevokeAPIKey(ctx, k.ID)
	require.NoError(t, err)
	_, err = store.AuthenticateAPIKey(ctx, plaintext)
	require.ErrorIs(t, err, models.ErrNotFound)
	again, err := store.RevokeAPIKey(ctx, k.ID)
	require.NoError(t, err, "revoking twice is harmless")
	require.NotNil(t, again.RevokedAt)
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestCountBuildsUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			projects := []string{"proj_a", "proj_b"}
			// Writers create builds of one project in transactions of
			// several statements (as a trigger does), move some forward and
			// delete some several at a time, all at once.
			const writers, rounds = 8, 6
			errs := make(chan error, writers)
			for w := range writers {
				go func() {
					var err error
					for r := range rounds {
						err = store.Tx(ctx, func(tx *gorm.DB) error {
							var ids []string
							for i := range 3 {
								b := models.Build{ID: models.NewID("build"), ProjectID: projects[(w+i)%2], Version: "1.0.0",
									Platform: "mac", Arch: "x64", Status: models.StatusQueued}
								if err := tx.Create(&b).Error; err != nil {
									return err
								}
								ids = append(ids, b.ID)
							}
							if err := tx.Model(&models.Build{}).Where("id = ?", ids[0]).Update("status", models.StatusBuilding).Error; err != nil {
								return err
							}
							if r%3 == 2 {
								return tx.Where("id IN ?", ids[1:]).Delete(&models.Build{}).Error
							}
							return nil
						})
						if err != nil {
							break
						}
					}
					errs <- err
				}()
			}
			for range writers {
				require.NoError(t, <-errs)
			}
			requireCountsMatch(t, db, store, projects)
			total, err := store.CountBuilds(ctx, models.BuildFilter{ProjectID: "proj_a"})
			require.NoError(t, err)
			require.Positive(t, total)
		})
	}
}

func TestCountSlotsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, models.DialectPostgres)
	store := models.NewStore(db)
	projects := []string{"proj_a"}
	for i := range 5 {
		b := models.Build{ID: models.NewID("build"), ProjectID: "proj_a", Version: "1.0.0", Platform: "mac", Arch: "x64",
			Status: []string{models.StatusQueued, models.StatusFailed}[i%2]}
		require.NoError(t, db.Gorm.Create(&b).Error)
	}
	// A database of an earlier release: one row per combination, no slots.
	require.NoError(t, db.Gorm.Exec("DROP TABLE build_counts").Error)
	require.NoError(t, db.Gorm.Exec(`CREATE TABLE build_counts (project_id VARCHAR(40) NOT NULL, status VARCHAR(16) NOT NULL,
		platform VARCHAR(16) NOT NULL, arch VARCHAR(16) NOT NULL, version VARCHAR(100) NOT NULL, n BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (project_id, status, platform, arch, version))`).Error)
	require.NoError(t, db.Gorm.Exec(`INSERT INTO build_counts (project_id, status, platform, arch, version, n)
		SELECT project_id, status, platform, arch, version, COUNT(*) FROM builds GROUP BY project_id, status, platform, arch, version`).Error)

	require.NoError(t, db.Migrate(ctx, discardLog()))
	require.True(t, db.Gorm.Migrator().HasColumn("build_counts", "slot"))
	requireCountsMatch(t, db, store, projects)
	b := models.Build{ID: models.NewID("build"), ProjectID: "proj_a", Version: "1.0.0", Platform: "mac", Arch: "x64", Status: models.StatusQueued}
	require.NoError(t, db.Gorm.Create(&b).Error)
	require.NoError(t, db.Gorm.Model(&b).Update("status", models.StatusSuccess).Error)
	requireCountsMatch(t, db, store, projects)
	require.NoError(t, db.Migrate(ctx, discardLog()), "migrating again changes nothing")
	requireCountsMatch(t, db, store, projects)
}

// TestBuildSummaryTimes reads the timestamps of a build's summary (read as
// text on SQLite) as GORM reads the whole build.
func TestBuildSummaryTimes(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			started := time.Date(2024, 1, 20, 10, 1, 0, 999999000, time.FixedZone("PST", -8*3600)) // PostgreSQL keeps microseconds
			b := models.Build{ID: models.NewID("build"), ProjectID: "proj_t", Version: "1.0.0", Platform: "mac", Arch: "x64",
				Status: models.StatusBuilding, StartedAt: &started}
			require.NoError(t, db.Gorm.Create(&b).Error)
			full, err := store.GetBuild(ctx, b.ID)
			require.NoError(t, err)
			summary, err := store.GetBuildSummary(ctx, b.ID)
			require.NoError(t, err)
			require.True(t, full.CreatedAt.Equal(summary.CreatedAt), "%s %s", full.CreatedAt, summary.CreatedAt)
			require.NotNil(t, summary.StartedAt)
			require.True(t, started.Equal(*summary.StartedAt), "%s", summary.StartedAt)
			require.Nil(t, summary.CompletedAt)
			page, _, err := store.ListBuilds(ctx, models.BuildFilter{ProjectID: "proj_t", Limit: 5})
			require.NoError(t, err)
			require.Len(t, page, 1)
			require.True(t, full.CreatedAt.Equal(page[0].CreatedAt))
		})
	}
}

// TestBuildSummaryMatchesBuild reads the API's columns of builds holding
// every kind of value (NULLs, empty and awkward text, the separator of
// SQLite's packed columns in the free-text ones) as GORM reads the whole
// build, through GetBuildSummary, ListBuilds and ReadBuildPage.
func TestBuildSummaryMatchesBuild(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			p := models.Project{Name: "Summary App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux"}
			require.NoError(t, store.CreateProject(ctx, &p))
			started := time.Date(2024, 1, 20, 10, 1, 0, 123456000, time.UTC)
			completed := started.Add(90 * time.Second)
			size := int64(45678912)
			retryOf := models.NewID("build")
			awkward := "a\x1fb \"quoted\" <html> & ünïcode\n\ttab"
			builds := []models.Build{
				{ID: models.NewID("build"), ProjectID: p.ID, Version: "1.0.0", Platform: "mac", Arch: "x64", Status: models.StatusQueued},
				{ID: models.NewID("build"), ProjectID: p.ID, Version: "2.0.0-" + awkward, Platform: "linux", Arch: "arm64",
					Status: models.StatusBuilding, StartedAt: &started, ProgressStep: 2, ProgressSteps: 5, ProgressName: awkward, LogSeq: 42},
				{ID: models.NewID("build"), ProjectID: p.ID, Version: "1.0.0", Platform: "windows", Arch: "x64", Status: models.StatusFailed,
					StartedAt: &started, CompletedAt: &completed, FailureReason: awkward, ErrorCode: "step_failed", ErrorStep: awkward, RetryOf: &retryOf},
				{ID: models.NewID("build"), ProjectID: p.ID, Version: "1.0.0", Platform: "mac", Arch: "arm64", Status: models.StatusSuccess,
					StartedAt: &started, CompletedAt: &completed, ArtifactName: awkward + ".dmg", ArtifactSize: &size, LogSeq: 9000000000},
			}
			for i := range builds {
				require.NoError(t, db.Gorm.Create(&builds[i]).Error)
			}
			apiView := func(b models.Build) models.Build {
				return models.Build{ID: b.ID, ProjectID: b.ProjectID, Version: b.Version, Platform: b.Platform, Arch: b.Arch,
					Status: b.Status, RetryOf: b.RetryOf, CreatedAt: b.CreatedAt.UTC(), StartedAt: utc(b.StartedAt),
					CompletedAt: utc(b.CompletedAt), ArtifactName: b.ArtifactName, ArtifactSize: b.ArtifactSize,
					ProgressStep: b.ProgressStep, ProgressSteps: b.ProgressSteps, ProgressName: b.ProgressName, LogSeq: b.LogSeq,
					FailureReason: b.FailureReason, ErrorCode: b.ErrorCode, ErrorStep: b.ErrorStep}
			}
			var want []models.Build
			for i := len(builds) - 1; i >= 0; i-- {
				full, err := store.GetBuild(ctx, builds[i].ID)
				require.NoError(t, err)
				summary, err := store.GetBuildSummary(ctx, builds[i].ID)
				require.NoError(t, err)
				require.Equal(t, apiView(full), apiView(summary))
				want = append(want, apiView(full))
			}
			listed, next, err := store.ListBuilds(ctx, models.BuildFilter{ProjectID: p.ID, Limit: 3})
			require.NoError(t, err)
			require.Equal(t, builds[1].ID, next)
			require.Len(t, listed, 3)
			for i := range listed {
				require.Equal(t, want[i], apiView(listed[i]))
			}
			page, err := store.ReadBuildPage(ctx, models.BuildFilter{ProjectID: p.ID, Limit: 3, Cursor: next})
			require.NoError(t, err)
			require.True(t, page.ProjectExists)
			require.Equal(t, int64(4), page.Total)
			require.Empty(t, page.Next)
			require.Len(t, page.Builds, 1)
			require.Equal(t, want[3], apiView(page.Builds[0]))

			missing, err := store.ReadBuildPage(ctx, models.BuildFilter{ProjectID: models.NewID("proj"), Limit: 3})
			require.NoError(t, err)
			require.Equal(t, models.BuildPage{Builds: []models.Build{}}, missing)
			all, err := store.ReadBuildPage(ctx, models.BuildFilter{Status: models.StatusFailed, Limit: 3})
			require.NoError(t, err)
			require.True(t, all.ProjectExists)
			require.Equal(t, int64(1), all.Total)
			require.Len(t, all.Builds, 1)
			require.Equal(t, want[1], apiView(all.Builds[0]))
		})
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// TestHotReadsDuringAWriteTransaction: the API's reads answer while a
// write transaction is open (on SQLite its one writer connection is held),
// and they see what is committed, not the transaction's own writes.
func TestHotReadsDuringAWriteTransaction(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			b := models.Build{ID: models.NewID("build"), ProjectID: "proj_w", Version: "1.0.0", Platform: "mac", Arch: "x64", Status: models.StatusQueued}
			require.NoError(t, db.Gorm.Create(&b).Error)

			err := store.Tx(ctx, func(tx *gorm.DB) error {
				require.NoError(t, tx.Model(&models.Build{}).Where("id = ?", b.ID).Update("status", models.StatusBuilding).Error)
				read := make(chan error, 1)
				go func() {
					got, err := store.GetBuildSummary(ctx, b.ID)
					if err == nil && got.Status != models.StatusQueued {
						err = fmt.Errorf("read %s, an uncommitted status", got.Status)
					}
					if err == nil {
						_, _, err = store.ListBuilds(ctx, models.BuildFilter{ProjectID: "proj_w", Limit: 5})
					}
					read <- err
				}()
				select {
				case err := <-read:
					return err
				case <-time.After(30 * time.Second): // a deadlock, not a slow read
					return errors.New("the read waited for the write transaction")
				}
			})
			require.NoError(t, err)
			got, err := store.GetBuildSummary(ctx, b.ID)
			require.NoError(t, err)
			require.Equal(t, models.StatusBuilding, got.Status, "committed")
		})
	}
}
